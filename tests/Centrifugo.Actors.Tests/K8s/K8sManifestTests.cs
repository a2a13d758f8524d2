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
    private const string LabelRef = "metadata.labels['";

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
        var env = Env(container, template);
        var configPath = (string)container["args"]!.AsArray().SkipWhile(a => (string?)a != "--config").Skip(1).First()!;
        var mount = Assert.Single(
            container["volumeMounts"]!.AsArray(), m => configPath.StartsWith((string)m!["mountPath"]! + "/", StringComparison.Ordinal))!;
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
            variables[name] = value;
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
        foreach (var (probe, path) in new[]
            { ("startupProbe", AdminPaths.Live), ("livenessProbe", AdminPaths.Live), ("readinessProbe", AdminPaths.Ready) })
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
        Assert.Equal("centrifugo-actors-0", options.Cluster.PodName);
        Assert.Equal(Int(sts["spec"]!, "replicas"), options.Cluster.Bootstrap.RequiredContactPoints);
        // Discovery selects exactly the StatefulSet's pods: its selector labels, app.kubernetes.io/instance among them.
        var selector = options.Cluster.Bootstrap.PodLabelSelector
            .Replace("{0}", options.Cluster.Bootstrap.ServiceName, StringComparison.Ordinal)
            .Split(',').Select(p => p.Split('=')).ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
        Assert.Equal(labels.Select(l => (l.Key, (string?)l.Value)).Order(), selector.Select(p => (p.Key, (string?)p.Value)).Order());
        Assert.Contains("app.kubernetes.io/instance", selector.Keys);
        Assert.Equal("remoting", options.Cluster.Bootstrap.PortName);
        Assert.Equal((string?)account["metadata"]!["name"], (string?)pod["serviceAccountName"]);
        Assert.Equal("true", (string?)pod["automountServiceAccountToken"]);
        var rule = Assert.Single(role["rules"]!.AsArray())!;
        Assert.Equal(["pods"], Strings(rule["resources"]));
        Assert.Equal(["get", "list", "watch"], Strings(rule["verbs"]).Order());
        Assert.Equal((string?)role["metadata"]!["name"], (string?)binding["roleRef"]!["name"]);
        Assert.Equal((string?)account["metadata"]!["name"], (string?)Assert.Single(binding["subjects"]!.AsArray())!["name"]);

        // Grace period > the node's shutdown budget (Kafka group leave with its revocation, cluster leave, hand-off
        // drain) + 10 s, and no hook eats into it.
        var budget = NodeHost.ShutdownBudget + new Centrifugo.Actors.Kafka.KafkaSettings().RevokeBudget;
        Assert.True(Int(pod, "terminationGracePeriodSeconds") > budget.TotalSeconds + 10,
            $"terminationGracePeriodSeconds must exceed {budget.TotalSeconds} s + 10 s");
        Assert.Null(container["lifecycle"]);
        Assert.True(NodeHost.ShutdownBudget > NodeRuntime.DrainTimeout);

        // Secrets only by reference: envFrom a Secret, no literal value for a secret-looking variable, no secret in the file.
        Assert.Equal("centrifugo-actors", (string?)Assert.Single(container["envFrom"]!.AsArray())!["secretRef"]!["name"]);
        Assert.DoesNotContain(env.Keys, k => k.Contains("KEY", StringComparison.Ordinal) || k.Contains("DSN", StringComparison.Ordinal)
            || k.Contains("PASSWORD", StringComparison.Ordinal) || k.Contains("TOKEN", StringComparison.Ordinal));
        Assert.DoesNotContain("\"key\"", configJson, StringComparison.Ordinal);
        // no placeholder: a missing Secret fails with the loader's message
        Assert.DoesNotContain("\"dsn\"", configJson, StringComparison.Ordinal);
        Assert.Equal((string?)variables["CENTRIFUGO_CONSUMERS_PG_MAIN_POSTGRESQL_DSN"],
            Assert.IsType<PostgresConsumer>(options.Consumers[0]).Postgresql.Dsn);
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
        Assert.Equal(AdminPaths.Metrics, (string?)annotations["prometheus.io/path"]);
        var podMonitor = Assert.Single(Parse(File.ReadAllText(Path.Combine(K8sDir, "optional", "podmonitor.yaml"))));
        var endpoint = Assert.Single(podMonitor["spec"]!["podMetricsEndpoints"]!.AsArray())!;
        Assert.Equal("admin", (string?)endpoint["port"]);
        Assert.Equal(AdminPaths.Metrics, (string?)endpoint["path"]);
        Assert.All(labels, l => Assert.Equal((string?)l.Value, (string?)podMonitor["spec"]!["selector"]!["matchLabels"]![l.Key]));
        Assert.Equal("FallbackToLogsOnError", (string?)container["terminationMessagePolicy"]);

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

    [Fact]
    public void A_second_instance_in_the_namespace_selects_and_discovers_only_its_own_pods()
    {
        if (Kubectl() is null)
        {
            output.WriteLine("SKIPPED: kubectl is not installed (see scripts/ensure-deps.sh)");
            return;
        }
        var overlay = Directory.CreateTempSubdirectory("k8s-green-");
        try
        {
            // What an operator writes for a second instance (blue/green, staging): a name suffix and its own instance label.
            File.WriteAllText(Path.Combine(overlay.FullName, "kustomization.yaml"), $"""
                apiVersion: kustomize.config.k8s.io/v1beta1
                kind: Kustomization
                resources: ["{Path.GetRelativePath(overlay.FullName, K8sDir)}"]
                nameSuffix: -green
                labels:
                  - includeSelectors: true
                    pairs: {"{"} app.kubernetes.io/instance: green {"}"}
                """);
            var blue = Render(K8sDir);
            var green = Render(overlay.FullName, "--load-restrictor", "LoadRestrictionsNone");

            var bluePods = PodLabels(blue);
            var greenPods = PodLabels(green);
            Assert.Equal("centrifugo-actors", bluePods["app.kubernetes.io/instance"]);
            Assert.Equal("green", greenPods["app.kubernetes.io/instance"]);
            foreach (var (objects, own, other) in new[] { (blue, bluePods, greenPods), (green, greenPods, bluePods) })
            {
                // Every selector (workload, Service, PDB, NetworkPolicy, affinity, spread) matches its own pods only.
                var selectors = Selectors(objects).ToList();
                Assert.True(selectors.Count >= 7, $"found {selectors.Count} selectors");
                Assert.All(selectors, sel => Assert.True(Matches(sel, own) && !Matches(sel, other), sel.ToJsonString()));
                // And so does cluster discovery.
                var sts = Assert.Single(objects, o => (string?)o["kind"] == "StatefulSet");
                var template = sts["spec"]!["template"]!;
                var env = Env(Assert.Single(template["spec"]!["containers"]!.AsArray())!, template);
                var discovery = env["CENTRIFUGO_ACTORS_CLUSTER_BOOTSTRAP_POD_LABEL_SELECTOR"].Split(',').Select(p => p.Split('='))
                    .ToDictionary(p => p[0], p => (JsonNode?)JsonValue.Create(p[1]), StringComparer.Ordinal);
                var asSelector = new JsonObject(discovery);
                Assert.True(Matches(asSelector, own) && !Matches(asSelector, other), asSelector.ToJsonString());
            }
            Assert.Empty(blue.Select(Name).Intersect(green.Select(Name)));
        }
        finally
        {
            overlay.Delete(recursive: true);
        }

        static string Name(JsonObject o) => $"{o["kind"]}/{o["metadata"]!["name"]}";

        static Dictionary<string, string> PodLabels(List<JsonObject> objects) =>
            Assert.Single(objects, o => (string?)o["kind"] == "StatefulSet")["spec"]!["template"]!["metadata"]!["labels"]!.AsObject()
                .ToDictionary(l => l.Key, l => (string)l.Value!, StringComparer.Ordinal);

        static bool Matches(JsonObject selector, Dictionary<string, string> labels) =>
            selector.All(l => labels.TryGetValue(l.Key, out var v) && v == (string?)l.Value);

        static IEnumerable<JsonObject> Selectors(List<JsonObject> objects)
        {
            foreach (var o in objects)
            {
                if ((string?)o["kind"] == "Service")
                {
                    yield return o["spec"]!["selector"]!.AsObject();
                }
                foreach (var m in Walk(o).Where(n => n.Key == "matchLabels"))
                {
                    if (m.Value is JsonObject labels && labels.ContainsKey("app.kubernetes.io/name"))
                    {
                        yield return labels;
                    }
                }
            }
        }

        static IEnumerable<KeyValuePair<string, JsonNode?>> Walk(JsonNode? node) => node switch
        {
            JsonObject obj => obj.SelectMany(kv => Walk(kv.Value).Prepend(kv)),
            JsonArray array => array.SelectMany(Walk),
            _ => [],
        };
    }

    [Fact]
    public void The_alert_rules_name_only_metrics_the_node_exports()
    {
        var rule = Assert.Single(Parse(File.ReadAllText(Path.Combine(K8sDir, "optional", "prometheusrule.yaml"))));
        Assert.Equal("PrometheusRule", (string?)rule["kind"]);
        var alerts = rule["spec"]!["groups"]!.AsArray().SelectMany(g => g!["rules"]!.AsArray()).ToList();
        Assert.True(alerts.Count >= 5);
        var sources = string.Join('\n',
            Directory.EnumerateFiles(Path.Combine(Root, "src"), "*.cs", SearchOption.AllDirectories).Select(File.ReadAllText));
        foreach (var alert in alerts)
        {
            var expr = (string)alert!["expr"]!;
            var names = System.Text.RegularExpressions.Regex.Matches(expr, "centrifugo_[a-z_]+").Select(m => m.Value).ToList();
            Assert.True(names.Count > 0 || expr.Contains("kube_pod_status_ready", StringComparison.Ordinal), expr);
            Assert.All(names, n => Assert.Contains($"\"{n}\"", sources, StringComparison.Ordinal));
            Assert.NotNull(alert["labels"]!["severity"]);
        }
    }

    private static List<JsonObject> Render(string directory, params string[] extra)
    {
        var start = new ProcessStartInfo(Kubectl()!) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("kustomize");
        start.ArgumentList.Add(directory);
        foreach (var arg in extra)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(60_000), "kubectl kustomize finished");
        Assert.True(process.ExitCode == 0, $"kubectl kustomize {directory} failed: {stderr.Result}");
        return Parse(stdout.Result);
    }

    private List<JsonObject> Render()
    {
        if (Kubectl() is not null)
        {
            return Render(K8sDir);
        }

        // No kubectl: the listed resources plus the generated ConfigMap (without the hash suffix).
        output.WriteLine("kubectl is not installed: checking the resource files without rendering (see scripts/ensure-deps.sh)");
        var kustomization = Assert.Single(Parse(File.ReadAllText(Path.Combine(K8sDir, "kustomization.yaml"))));
        var objects = kustomization["resources"]!.AsArray().SelectMany(r => Parse(File.ReadAllText(Path.Combine(K8sDir, (string)r!))))
            .ToList();
        foreach (var generator in kustomization["configMapGenerator"]!.AsArray())
        {
            var data = new JsonObject();
            foreach (var file in generator!["files"]!.AsArray())
            {
                data[Path.GetFileName((string)file!)] = File.ReadAllText(Path.Combine(K8sDir, (string)file!));
            }
            objects.Add(new JsonObject
                { ["kind"] = "ConfigMap", ["metadata"] = new JsonObject { ["name"] = (string?)generator["name"] }, ["data"] = data });
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

    /// <summary>
    /// The container's variables as the pod sees them: downward-API fields resolved (the pod IP as 10.0.0.5, labels from
    /// the pod template) and $(NAME) references to earlier variables substituted, as the kubelet does.
    /// </summary>
    private static Dictionary<string, string> Env(JsonNode container, JsonNode template)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var e in container["env"]!.AsArray())
        {
            var value = e!["value"] is { } literal
                ? (string)literal!
                : (string?)e["valueFrom"]?["fieldRef"]?["fieldPath"] switch
                {
                    "status.podIP" => "10.0.0.5",
                    "metadata.name" => "centrifugo-actors-0",
                    { } path when path.StartsWith(LabelRef, StringComparison.Ordinal) =>
                        (string?)template["metadata"]!["labels"]![path[LabelRef.Length..^2]] ?? "",
                    var other => throw new InvalidOperationException($"unexpected fieldRef {other}"),
                };
            foreach (var (name, resolved) in env)
            {
                value = value.Replace($"$({name})", resolved, StringComparison.Ordinal);
            }
            env[(string)e["name"]!] = value;
        }
        return env;
    }

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
