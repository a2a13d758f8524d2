using System.Collections;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Host;
using Centrifugo.Actors.Hosting;
using Xunit.Abstractions;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace Centrifugo.Actors.Tests.K8s;

/// <summary>
/// k8s/ renders with `kubectl kustomize` (when kubectl is installed; otherwise the listed resource files and the
/// configMapGenerator are read directly, and the render step alone is reported as skipped) and the rendered objects
/// keep the invariants the node relies on: names, ports and probe paths match the app, the grace period exceeds the
/// shutdown budget, secrets only by reference, spread across Kubernetes nodes, PDB eviction policy, no service
/// links, NetworkPolicy, restricted pod security, scrape annotations, discovery RBAC.
/// </summary>
public sealed class K8sManifestTests(ITestOutputHelper output)
{
    private static readonly string Root = FindRoot();
    private static readonly string K8sDir = Path.Combine(Root, "k8s");

    [Fact]
    public void The_manifests_render_and_keep_every_invariant()
    {
        var objects = Render();
        JsonObject One(string kind) => Assert.Single(objects, o => (string?)o["kind"] == kind);

        var sts = One("StatefulSet");
        var service = One("Service");
        var pdb = One("PodDisruptionBudget");
        var policy = One("NetworkPolicy");
        var account = One("ServiceAccount");
        var role = One("Role");
        var binding = One("RoleBinding");
        var configMap = One("ConfigMap");
        Assert.DoesNotContain(objects, o => (string?)o["kind"] == "Secret");

        var labels = sts["spec"]!["selector"]!["matchLabels"]!.AsObject();
        var template = sts["spec"]!["template"]!;
        var pod = template["spec"]!;
        var container = Assert.Single(pod["containers"]!.AsArray())!;
        Assert.All(labels, l => Assert.Equal((string?)l.Value, (string?)template["metadata"]!["labels"]![l.Key]));

        // The node's configuration (with the Secret's names set and the pod IP substituted) loads and matches the pod.
        var env = Env(container);
        var configPath = (string)container["args"]!.AsArray().SkipWhile(a => (string?)a != "--config").Skip(1).First()!;
        var mount = Assert.Single(container["volumeMounts"]!.AsArray(), m => configPath.StartsWith((string)m!["mountPath"]! + "/", StringComparison.Ordinal))!;
        var configVolume = Assert.Single(pod["volumes"]!.AsArray(), v => (string?)v!["name"] == (string?)mount["name"])!;
        Assert.Equal((string?)configMap["metadata"]!["name"], (string?)configVolume["configMap"]!["name"]);
        var configJson = (string)configMap["data"]![Path.GetFileName(configPath)]!;
        // The Secret's variables (envFrom), as in the example Secret.
        var secret = Assert.Single(Parse(File.ReadAllText(Path.Combine(K8sDir, "secret.example.yaml"))));
        var variables = new Hashtable();
        foreach (var (key, value) in secret["stringData"]!.AsObject())
        {
            variables[key] = (string)value!;
        }
        foreach (var (name, value) in env)
        {
            variables[name] = value.Replace("$(POD_IP)", "10.0.0.5", StringComparison.Ordinal);
        }
        var options = ConfigLoader.LoadFromJson(configJson, variables);

        // Names, ports and probe paths match the app.
        int Port(string name) => Int(Assert.Single(container["ports"]!.AsArray(), p => (string?)p!["name"] == name)!, "containerPort");
        Assert.Equal(options.Cluster.Port, Port("remoting"));
        Assert.Equal(int.Parse(options.Admin.Address.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture), Port("admin"));
        Assert.StartsWith("0.0.0.0:", options.Admin.Address, StringComparison.Ordinal);
        Assert.Equal((string?)service["metadata"]!["name"], (string?)sts["spec"]!["serviceName"]);
        Assert.All(service["spec"]!["ports"]!.AsArray(), p => Port((string)p!["targetPort"]!));
        Assert.All(labels, l => Assert.Equal((string?)l.Value, (string?)service["spec"]!["selector"]![l.Key]));
        foreach (var (probe, path) in new[] { ("startupProbe", AdminEndpoint.LivePath), ("livenessProbe", AdminEndpoint.LivePath), ("readinessProbe", AdminEndpoint.ReadyPath) })
        {
            Assert.Equal(path, (string?)container[probe]!["httpGet"]!["path"]);
            Assert.Equal("admin", (string?)container[probe]!["httpGet"]!["port"]);
            Assert.NotNull(container[probe]!["timeoutSeconds"]);
        }
        // Start-up (database and Kafka checks) gets longer than liveness would allow.
        Assert.True(Int(container["startupProbe"]!, "periodSeconds") * Int(container["startupProbe"]!, "failureThreshold") >= 60);

        // Discovery: the pod advertises its IP, finds its peers by label and remoting port, with RBAC to list pods.
        Assert.Equal(ClusterDiscovery.Kubernetes, options.Cluster.Discovery);
        Assert.Equal("10.0.0.5", options.Cluster.Hostname);
        Assert.Equal(Int(sts["spec"]!, "replicas"), options.Cluster.Bootstrap.RequiredContactPoints);
        var selector = options.Cluster.Bootstrap.PodLabelSelector.Replace("{0}", options.Cluster.Bootstrap.ServiceName, StringComparison.Ordinal).Split('=');
        Assert.Equal(selector[1], (string?)labels[selector[0]]);
        Assert.Equal("remoting", options.Cluster.Bootstrap.PortName);
        Assert.Equal((string?)account["metadata"]!["name"], (string?)pod["serviceAccountName"]);
        Assert.Equal("true", (string?)pod["automountServiceAccountToken"]);
        var rule = Assert.Single(role["rules"]!.AsArray())!;
        Assert.Equal(["pods"], Strings(rule["resources"]));
        Assert.Equal(["get", "list", "watch"], Strings(rule["verbs"]).Order());
        Assert.Equal((string?)role["metadata"]!["name"], (string?)binding["roleRef"]!["name"]);
        Assert.Equal((string?)account["metadata"]!["name"], (string?)Assert.Single(binding["subjects"]!.AsArray())!["name"]);

        // Grace period > the node's shutdown budget (leave + hand-off drain) + the wait for a Kafka group member's leave
        // of its consumer group after that + 10 s, and no hook eats into it.
        var budget = NodeHost.ShutdownBudget + Centrifugo.Actors.Kafka.KafkaConsumerRuntime.MemberLeaveBudget;
        Assert.True(Int(pod, "terminationGracePeriodSeconds") > budget.TotalSeconds + 10,
            $"terminationGracePeriodSeconds must exceed {budget.TotalSeconds} s + 10 s");
        Assert.Null(container["lifecycle"]);
        Assert.True(NodeHost.ShutdownBudget > NodeRuntime.DrainTimeout);

        // Secrets only by reference: envFrom a Secret, no literal value for a secret-looking variable, no secret in the file.
        Assert.Equal("centrifugo-actors", (string?)Assert.Single(container["envFrom"]!.AsArray())!["secretRef"]!["name"]);
        Assert.DoesNotContain(env.Keys, k => k.Contains("KEY", StringComparison.Ordinal) || k.Contains("DSN", StringComparison.Ordinal)
            || k.Contains("PASSWORD", StringComparison.Ordinal) || k.Contains("TOKEN", StringComparison.Ordinal));
        Assert.DoesNotContain("\"key\"", configJson, StringComparison.Ordinal);
        Assert.Contains("postgres://placeholder@", configJson, StringComparison.Ordinal);
        Assert.Equal((string?)variables["CENTRIFUGO_CONSUMERS_PG_MAIN_POSTGRESQL_DSN"], options.Consumers[0].Postgresql!.Dsn);
        Assert.NotEmpty(options.Admin.Token);

        // One lost Kubernetes node never takes a majority: one pod per node (required), spread over zones.
        var anti = Assert.Single(pod["affinity"]!["podAntiAffinity"]!["requiredDuringSchedulingIgnoredDuringExecution"]!.AsArray())!;
        Assert.Equal("kubernetes.io/hostname", (string?)anti["topologyKey"]);
        Assert.All(labels, l => Assert.Equal((string?)l.Value, (string?)anti["labelSelector"]!["matchLabels"]![l.Key]));
        Assert.Contains(pod["topologySpreadConstraints"]!.AsArray(), t => (string?)t!["topologyKey"] == "topology.kubernetes.io/zone");
        Assert.True(Int(sts["spec"]!, "minReadySeconds") >= 15);

        // PDB: one at a time, and a NotReady pod can still be evicted.
        Assert.Equal("1", (string?)pdb["spec"]!["maxUnavailable"]);
        Assert.Equal("AlwaysAllow", (string?)pdb["spec"]!["unhealthyPodEvictionPolicy"]);
        Assert.All(labels, l => Assert.Equal((string?)l.Value, (string?)pdb["spec"]!["selector"]!["matchLabels"]![l.Key]));

        // No service links (they collide with the CENTRIFUGO_* overrides).
        Assert.Equal("false", (string?)pod["enableServiceLinks"]);

        // NetworkPolicy: remoting only from the app's own pods; admin only from a namespace (the scrapers').
        Assert.All(labels, l => Assert.Equal((string?)l.Value, (string?)policy["spec"]!["podSelector"]!["matchLabels"]![l.Key]));
        var ingress = policy["spec"]!["ingress"]!.AsArray();
        var remoting = Assert.Single(ingress, r => r!["ports"]!.AsArray().Any(p => (string?)p!["port"] == "remoting"))!;
        var from = Assert.Single(remoting["from"]!.AsArray())!;
        Assert.Null(from["namespaceSelector"]);
        Assert.All(labels, l => Assert.Equal((string?)l.Value, (string?)from["podSelector"]!["matchLabels"]![l.Key]));
        var admin = Assert.Single(ingress, r => r!["ports"]!.AsArray().Any(p => (string?)p!["port"] == "admin"))!;
        Assert.NotNull(Assert.Single(admin["from"]!.AsArray())!["namespaceSelector"]);

        // Pod Security "restricted", plus a writable /tmp for dotnet-counters/trace.
        Assert.Equal("RuntimeDefault", (string?)pod["securityContext"]!["seccompProfile"]!["type"]);
        Assert.Equal("true", (string?)pod["securityContext"]!["runAsNonRoot"]);
        Assert.NotEqual("0", (string?)pod["securityContext"]!["runAsUser"]);
        var sc = container["securityContext"]!;
        Assert.Equal("false", (string?)sc["allowPrivilegeEscalation"]);
        Assert.Equal("true", (string?)sc["readOnlyRootFilesystem"]);
        Assert.Equal(["ALL"], Strings(sc["capabilities"]!["drop"]));
        var tmp = Assert.Single(container["volumeMounts"]!.AsArray(), m => (string?)m!["mountPath"] == "/tmp")!;
        Assert.NotNull(Assert.Single(pod["volumes"]!.AsArray(), v => (string?)v!["name"] == (string?)tmp["name"])!["emptyDir"]);

        // Prometheus: annotations on the pod, and the optional PodMonitor, both on the admin port's /metrics.
        var annotations = template["metadata"]!["annotations"]!;
        Assert.Equal("true", (string?)annotations["prometheus.io/scrape"]);
        Assert.Equal(Port("admin").ToString(System.Globalization.CultureInfo.InvariantCulture), (string?)annotations["prometheus.io/port"]);
        Assert.Equal(AdminEndpoint.MetricsPath, (string?)annotations["prometheus.io/path"]);
        var podMonitor = Assert.Single(Parse(File.ReadAllText(Path.Combine(K8sDir, "optional", "podmonitor.yaml"))));
        var endpoint = Assert.Single(podMonitor["spec"]!["podMetricsEndpoints"]!.AsArray())!;
        Assert.Equal("admin", (string?)endpoint["port"]);
        Assert.Equal(AdminEndpoint.MetricsPath, (string?)endpoint["path"]);

        // A multi-stage, non-root image definition.
        var dockerfile = File.ReadAllLines(Path.Combine(Root, "Dockerfile"));
        Assert.True(dockerfile.Count(l => l.StartsWith("FROM ", StringComparison.Ordinal)) >= 2);
        var user = Assert.Single(dockerfile, l => l.StartsWith("USER ", StringComparison.Ordinal));
        Assert.DoesNotContain(user.Split(' ')[1].Split(':')[0], new[] { "0", "root" });
    }

    [Fact]
    public void A_config_change_rolls_the_pods_through_a_generated_config_map_name()
    {
        var kustomization = Assert.Single(Parse(File.ReadAllText(Path.Combine(K8sDir, "kustomization.yaml"))));
        var generator = Assert.Single(kustomization["configMapGenerator"]!.AsArray())!;
        Assert.Equal("centrifugo-actors", (string?)generator["name"]);
        Assert.Null(generator["options"]?["disableNameSuffixHash"]);
        if (Kubectl() is null)
        {
            output.WriteLine("SKIPPED the render check: kubectl is not installed (see scripts/ensure-deps.sh)");
            return;
        }
        var name = (string)Assert.Single(Render(), o => (string?)o["kind"] == "ConfigMap")["metadata"]!["name"]!;
        Assert.Matches("^centrifugo-actors-[a-z0-9]{10}$", name);
    }

    private List<JsonObject> Render()
    {
        if (Kubectl() is { } kubectl)
        {
            var start = new ProcessStartInfo(kubectl) { RedirectStandardOutput = true, RedirectStandardError = true };
            start.ArgumentList.Add("kustomize");
            start.ArgumentList.Add(K8sDir);
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            Assert.True(process.WaitForExit(60_000), "kubectl kustomize finished");
            Assert.True(process.ExitCode == 0, $"kubectl kustomize k8s failed: {stderr.Result}");
            return Parse(stdout.Result);
        }

        // No kubectl: the listed resources plus the generated ConfigMap (without the hash suffix).
        output.WriteLine("kubectl is not installed: checking the resource files without rendering (see scripts/ensure-deps.sh)");
        var kustomization = Assert.Single(Parse(File.ReadAllText(Path.Combine(K8sDir, "kustomization.yaml"))));
        var objects = kustomization["resources"]!.AsArray().SelectMany(r => Parse(File.ReadAllText(Path.Combine(K8sDir, (string)r!)))).ToList();
        foreach (var generator in kustomization["configMapGenerator"]!.AsArray())
        {
            var data = new JsonObject();
            foreach (var file in generator!["files"]!.AsArray())
            {
                data[Path.GetFileName((string)file!)] = File.ReadAllText(Path.Combine(K8sDir, (string)file!));
            }
            objects.Add(new JsonObject { ["kind"] = "ConfigMap", ["metadata"] = new JsonObject { ["name"] = (string?)generator["name"] }, ["data"] = data });
        }
        return objects;
    }

    private static string? Kubectl() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "kubectl")).FirstOrDefault(File.Exists);

    /// <summary>Multi-document YAML as JSON objects; every scalar is a string.</summary>
    private static List<JsonObject> Parse(string yaml)
    {
        var deserializer = new DeserializerBuilder().Build();
        var parser = new Parser(new StringReader(yaml));
        parser.Consume<StreamStart>();
        var result = new List<JsonObject>();
        while (parser.Accept<DocumentStart>(out _))
        {
            if (ToJson(deserializer.Deserialize<object>(parser)) is JsonObject obj)
            {
                result.Add(obj);
            }
        }
        return result;
    }

    private static JsonNode? ToJson(object? value) => value switch
    {
        IDictionary<object, object> map => new JsonObject(map.Select(kv => KeyValuePair.Create(kv.Key.ToString()!, ToJson(kv.Value)))),
        IList<object> list => new JsonArray(list.Select(ToJson).ToArray()),
        null => null,
        _ => JsonValue.Create(value.ToString()),
    };

    private static Dictionary<string, string> Env(JsonNode container) =>
        container["env"]!.AsArray().Where(e => e!["value"] is not null)
            .ToDictionary(e => (string)e!["name"]!, e => (string)e!["value"]!, StringComparer.Ordinal);

    private static int Int(JsonNode node, string name) => int.Parse((string)node[name]!, System.Globalization.CultureInfo.InvariantCulture);

    private static IEnumerable<string> Strings(JsonNode? node) => node!.AsArray().Select(n => (string)n!);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Centrifugo.Actors.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("repository root (Centrifugo.Actors.sln) not found above the test assembly");
    }
}
