using System.Text.Json;
using System.Text.Json.Nodes;

namespace Centrifugo.Actors.Configuration;

/// <summary>
/// cluster.discovery and cluster.bootstrap: how a node finds the cluster. The default is the static
/// <c>seed_nodes</c> list (or a one-node cluster); "kubernetes" and "config" discover the peers through Akka.Discovery
/// (the Kubernetes API, or a fixed list) and join them as seed nodes. The two mechanisms are never mixed.
/// </summary>
internal static class BootstrapConfig
{
    private static readonly string[] Methods = ["seed_nodes", "kubernetes", "config"];

    public static (ClusterDiscovery Discovery, BootstrapOptions Bootstrap) Bind(
        JsonObject cluster, string hostname, bool hasSeedNodes, Func<string, ConfigException> fail)
    {
        var defaults = new BootstrapOptions();
        var method = JsonFields.String(cluster, "discovery") ?? "";
        var discovery = method switch
        {
            "" or "seed_nodes" => ClusterDiscovery.SeedNodes,
            "kubernetes" => ClusterDiscovery.Kubernetes,
            "config" => ClusterDiscovery.Config,
            _ => throw fail($"discovery \"{method}\" is not supported{JsonFields.Suggest(method, Methods)}: " +
                "use \"seed_nodes\" (default), \"kubernetes\" or \"config\""),
        };

        var section = JsonFields.Object(cluster, "bootstrap");
        var options = new BootstrapOptions
        {
            ServiceName = JsonFields.String(section, "service_name") ?? defaults.ServiceName,
            RequiredContactPoints = JsonFields.Int(section, "required_contact_points") ?? defaults.RequiredContactPoints,
            Interval = JsonFields.Duration(section, "interval", m => fail("bootstrap." + m)) ?? defaults.Interval,
            PodLabelSelector = JsonFields.String(section, "pod_label_selector") ?? defaults.PodLabelSelector,
            PodNamespace = JsonFields.String(section, "pod_namespace") ?? defaults.PodNamespace,
            PortName = JsonFields.String(section, "port_name") ?? defaults.PortName,
            ContactPoints = JsonFields.StringList(section, "contact_points") ?? defaults.ContactPoints,
        };
        if (discovery == ClusterDiscovery.SeedNodes)
        {
            return (discovery, options);
        }

        if (hasSeedNodes)
        {
            throw fail($"seed_nodes must be empty when discovery is \"{method}\": " +
                "the discovered peers are the seed nodes, and mixing both can form two clusters");
        }
        if (string.IsNullOrWhiteSpace(options.ServiceName))
        {
            throw fail("bootstrap.service_name must not be empty");
        }
        if (options.RequiredContactPoints is < 1 or > 1000)
        {
            throw fail($"bootstrap.required_contact_points must be between 1 and 1000, got {options.RequiredContactPoints}");
        }
        if (options.Interval < TimeSpan.FromMilliseconds(100) || options.Interval > TimeSpan.FromMinutes(1))
        {
            throw fail($"bootstrap.interval must be between 100ms and 1m, got {GoDuration.Format(options.Interval)}");
        }
        if (discovery == ClusterDiscovery.Kubernetes)
        {
            if (string.IsNullOrWhiteSpace(options.PodLabelSelector))
            {
                throw fail("bootstrap.pod_label_selector must not be empty (e.g. \"app.kubernetes.io/name={0}\")");
            }
            if (string.IsNullOrWhiteSpace(options.PortName))
            {
                throw fail("bootstrap.port_name must name the container port of Akka.Remote (default \"remoting\")");
            }
            if (!System.Net.IPAddress.TryParse(hostname, out _))
            {
                throw fail("hostname must be the pod IP when discovery is \"kubernetes\" (discovery finds peers by IP; " +
                    $"set CENTRIFUGO_ACTORS_CLUSTER_HOSTNAME to $(POD_IP)), got \"{hostname}\"");
            }
        }
        if (discovery == ClusterDiscovery.Config)
        {
            if (options.ContactPoints.Count == 0)
            {
                throw fail("bootstrap.contact_points must list the remoting host:port of the nodes when discovery is \"config\"");
            }
            foreach (var point in options.ContactPoints)
            {
                if (!ConfigLoader.IsHostPort(point) || point.EndsWith(":0", StringComparison.Ordinal))
                {
                    throw fail($"bootstrap.contact_points: \"{point}\" must be host:port (the remoting address of a node)");
                }
            }
        }

        return (discovery, options);
    }

    public static string Name(ClusterDiscovery discovery) => discovery switch
    {
        ClusterDiscovery.Kubernetes => "kubernetes",
        ClusterDiscovery.Config => "config",
        _ => "seed_nodes",
    };

    public static void Write(Utf8JsonWriter w, ClusterOptions cluster)
    {
        w.WriteString("discovery", Name(cluster.Discovery));
        var b = cluster.Bootstrap;
        w.WriteStartObject("bootstrap");
        w.WriteString("service_name", b.ServiceName);
        w.WriteNumber("required_contact_points", b.RequiredContactPoints);
        w.WriteString("interval", GoDuration.Format(b.Interval));
        w.WriteString("pod_label_selector", b.PodLabelSelector);
        w.WriteString("pod_namespace", b.PodNamespace);
        w.WriteString("port_name", b.PortName);
        w.WriteStartArray("contact_points");
        foreach (var point in b.ContactPoints)
        {
            w.WriteStringValue(point);
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
