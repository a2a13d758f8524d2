using Centrifugo.Actors.Configuration;

namespace Centrifugo.Actors.Tests.Configuration;

/// <summary>cluster.discovery / cluster.bootstrap: defaults, env overrides, start-up validation.</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class ClusterDiscoveryConfigTests
{
    [Fact]
    public void Seed_nodes_stay_the_default_and_the_bootstrap_defaults_fit_the_k8s_manifests()
    {
        var cluster = Cfg.Load("""{"api":{"key":"k"}}""").Cluster;
        Assert.Equal(ClusterDiscovery.SeedNodes, cluster.Discovery);
        Assert.Equal("remoting", cluster.Bootstrap.PortName);
        Assert.Equal(TimeSpan.FromSeconds(2), cluster.Bootstrap.Interval);
        Assert.Equal("centrifugo-actors", cluster.Bootstrap.ServiceName);
        Assert.Equal("app.kubernetes.io/name={0}", cluster.Bootstrap.PodLabelSelector);
        Assert.Equal(2, cluster.Bootstrap.RequiredContactPoints);
    }

    [Fact]
    public void Every_bootstrap_setting_has_an_env_override()
    {
        var cluster = Cfg.Load(
            """{"api":{"key":"k"},"cluster":{"bootstrap":{"port_name":"akka"}}}""",
            ("CENTRIFUGO_ACTORS_CLUSTER_DISCOVERY", "kubernetes"),
            ("CENTRIFUGO_ACTORS_CLUSTER_HOSTNAME", "10.1.2.3"),
            ("CENTRIFUGO_ACTORS_CLUSTER_BOOTSTRAP_PORT_NAME", "remote"),
            ("CENTRIFUGO_ACTORS_CLUSTER_BOOTSTRAP_INTERVAL", "5s"),
            ("CENTRIFUGO_ACTORS_CLUSTER_BOOTSTRAP_SERVICE_NAME", "actors"),
            ("CENTRIFUGO_ACTORS_CLUSTER_BOOTSTRAP_REQUIRED_CONTACT_POINTS", "3"),
            ("CENTRIFUGO_ACTORS_CLUSTER_BOOTSTRAP_POD_LABEL_SELECTOR", "app=actors"),
            ("CENTRIFUGO_ACTORS_CLUSTER_BOOTSTRAP_POD_NAMESPACE", "prod")).Cluster;
        Assert.Equal(ClusterDiscovery.Kubernetes, cluster.Discovery);
        Assert.Equal(new BootstrapOptions
        {
            PortName = "remote", Interval = TimeSpan.FromSeconds(5), ServiceName = "actors", RequiredContactPoints = 3,
            PodLabelSelector = "app=actors", PodNamespace = "prod",
        }, cluster.Bootstrap with { ContactPoints = [] });
    }

    [Fact]
    public void Config_discovery_reads_its_contact_points_from_env_as_a_space_separated_list()
    {
        var cluster = Cfg.Load("""{"api":{"key":"k"},"cluster":{"discovery":"config"}}""",
            ("CENTRIFUGO_ACTORS_CLUSTER_BOOTSTRAP_CONTACT_POINTS", "10.0.0.1:8558 node-b:8558")).Cluster;
        Assert.Equal(["10.0.0.1:8558", "node-b:8558"], cluster.Bootstrap.ContactPoints);
    }

    [Theory]
    [InlineData("""{"discovery":"kubernetess"}""", "discovery \"kubernetess\" is not supported (did you mean \"kubernetes\"?)")]
    [InlineData("""{"discovery":"kubernetes","seed_nodes":["akka.tcp://centrifugo-actors@a:4053"]}""",
        "seed_nodes must be empty when discovery is \"kubernetes\"")]
    [InlineData("""{"discovery":"kubernetes","hostname":"pod-0.actors"}""", "hostname must be the pod IP when discovery is \"kubernetes\"")]
    [InlineData("""{"discovery":"kubernetes","bootstrap":{"interval":"1ms"}}""",
        "bootstrap.interval must be between 100ms and 1m, got 1ms")]
    [InlineData("""{"discovery":"kubernetes","bootstrap":{"interval":"soon"}}""", "bootstrap.interval")]
    [InlineData("""{"discovery":"kubernetes","bootstrap":{"port_name":""}}""", "bootstrap.port_name must name the container port")]
    [InlineData("""{"discovery":"kubernetes","bootstrap":{"required_contact_points":0}}""",
        "bootstrap.required_contact_points must be between 1 and 1000")]
    [InlineData("""{"discovery":"kubernetes","bootstrap":{"pod_label_selector":" "}}""", "bootstrap.pod_label_selector must not be empty")]
    [InlineData("""{"discovery":"config"}""", "bootstrap.contact_points must list")]
    [InlineData("""{"discovery":"config","bootstrap":{"contact_points":["node-a"]}}""",
        "bootstrap.contact_points: \"node-a\" must be host:port")]
    [InlineData("""{"bootstrap":{"unknown":1}}""", "unknown key \"bootstrap.unknown\"")]
    public void Bad_discovery_settings_are_refused_at_start_up(string cluster, string expected)
    {
        var message = Cfg.Error($$"""{"api":{"key":"k"},"cluster":{{cluster}}}""");
        Assert.StartsWith("in cluster: ", message, StringComparison.Ordinal);
        Assert.Contains(expected, message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_redacted_effective_config_shows_the_discovery_settings()
    {
        var json = ConfigLoader.ToRedactedJson(
            Cfg.Load("""{"api":{"key":"k"},"cluster":{"discovery":"kubernetes","hostname":"10.0.0.7"}}"""));
        Assert.Contains("\"discovery\": \"kubernetes\"", json, StringComparison.Ordinal);
        Assert.Contains("\"port_name\": \"remoting\"", json, StringComparison.Ordinal);
        // The written form loads back to the same options.
        Assert.Equal(ClusterDiscovery.Kubernetes,
            ConfigLoader.LoadFromJson(json.Replace("\"***\"", "\"k\"", StringComparison.Ordinal), Cfg.Env()).Cluster.Discovery);
    }
}
