using System.Text.Json.Nodes;

namespace Centrifugo.Actors.Testing.Processes;

/// <summary>A postgresql consumer of a <see cref="NodeConfig"/>.</summary>
internal sealed record PgConsumerConfig(
    string Name, string Dsn, string Table, int Partitions = 4, string PollInterval = "50ms", string? NotificationChannel = null);

/// <summary>A kafka consumer of a <see cref="NodeConfig"/> (envelope mode).</summary>
internal sealed record KafkaConsumerConfig(
    string Name, string Brokers, string Group, IReadOnlyList<string> Topics, string FetchMaxWait = "50ms", int MaxPollRecords = 100,
    string? GroupProtocol = null, string? SessionTimeout = null);

/// <summary>
/// The config file of one node process, in the executable's JSON format (Centrifugo's <c>consumers</c> plus
/// api/cluster/admin). Ports are fixed up front: a seed list must name them before the nodes start.
/// </summary>
internal sealed record NodeConfig
{
    public const string SystemName = "centrifugo-actors";

    public required string ApiUrl { get; init; }
    /// <summary>null leaves api.key out (e.g. set through CENTRIFUGO_API_KEY).</summary>
    public string? ApiKey { get; init; }
    public string ApiTimeout { get; init; } = "5s";
    public IReadOnlyList<PgConsumerConfig> Consumers { get; init; } = [];
    public IReadOnlyList<KafkaConsumerConfig> KafkaConsumers { get; init; } = [];
    /// <summary>Edits the finished JSON (e.g. to add <c>cluster.*</c> settings a test wants to try).</summary>
    public Action<JsonObject>? Customize { get; init; }
    public int ClusterPort { get; init; } = NodeProcess.FreeTcpPort();
    public int AdminPort { get; init; } = NodeProcess.FreeTcpPort();
    /// <summary>Empty = the node forms a one-node cluster with itself.</summary>
    public IReadOnlyList<string> SeedNodes { get; init; } = [];
    public int NumberOfShards { get; init; } = 20;
    /// <summary>Further cluster.* settings (e.g. "downing_stable_after": "30s").</summary>
    public IReadOnlyDictionary<string, string> ClusterSettings { get; init; } = new Dictionary<string, string>();
    /// <summary>Extra keys merged into the <c>cluster</c> section (e.g. discovery, bootstrap).</summary>
    public IReadOnlyDictionary<string, JsonNode> ClusterExtra { get; init; } = new Dictionary<string, JsonNode>();
    /// <summary>Extra keys merged into the <c>admin</c> section (e.g. token).</summary>
    public IReadOnlyDictionary<string, JsonNode> AdminExtra { get; init; } = new Dictionary<string, JsonNode>();
    /// <summary>Host of the admin endpoint. Default 127.0.0.1.</summary>
    public string AdminHost { get; init; } = "127.0.0.1";

    /// <summary>akka.tcp://centrifugo-actors@127.0.0.1:PORT: what other nodes put in their seed list.</summary>
    public string Address => $"akka.tcp://{SystemName}@127.0.0.1:{ClusterPort}";

    public JsonObject ToJsonObject()
    {
        var api = new JsonObject { ["url"] = ApiUrl, ["timeout"] = ApiTimeout };
        if (ApiKey is not null)
        {
            api["key"] = ApiKey;
        }

        var consumers = new JsonArray();
        foreach (var c in Consumers)
        {
            var postgresql = new JsonObject
            {
                ["dsn"] = c.Dsn,
                ["outbox_table_name"] = c.Table,
                ["num_partitions"] = c.Partitions,
                ["partition_poll_interval"] = c.PollInterval,
            };
            if (c.NotificationChannel is not null)
            {
                postgresql["partition_notification_channel"] = c.NotificationChannel;
            }

            consumers.Add(new JsonObject { ["name"] = c.Name, ["type"] = "postgresql", ["postgresql"] = postgresql });
        }

        foreach (var k in KafkaConsumers)
        {
            var kafka = new JsonObject
            {
                ["brokers"] = new JsonArray(k.Brokers.Split(',').Select(b => (JsonNode?)JsonValue.Create(b)).ToArray()),
                ["topics"] = new JsonArray(k.Topics.Select(t => (JsonNode?)JsonValue.Create(t)).ToArray()),
                ["consumer_group"] = k.Group,
                ["fetch_max_wait"] = k.FetchMaxWait,
                ["max_poll_records"] = k.MaxPollRecords,
            };
            if (k.GroupProtocol is { } protocol)
            {
                kafka["group_protocol"] = protocol;
            }
            if (k.SessionTimeout is { } session)
            {
                kafka["session_timeout"] = session;
            }
            consumers.Add(new JsonObject { ["name"] = k.Name, ["type"] = "kafka", ["kafka"] = kafka });
        }

        var cluster = new JsonObject
        {
            ["system_name"] = SystemName,
            ["hostname"] = "127.0.0.1",
            ["port"] = ClusterPort,
            ["seed_nodes"] = new JsonArray(SeedNodes.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray()),
            ["number_of_shards"] = NumberOfShards,
        };
        foreach (var (key, value) in ClusterSettings)
        {
            cluster[key] = value;
        }

        var root = new JsonObject
        {
            ["api"] = api,
            ["consumers"] = consumers,
            ["cluster"] = cluster,
            ["admin"] = new JsonObject { ["address"] = $"{AdminHost}:{AdminPort}" },
        };
        foreach (var (key, value) in ClusterExtra)
        {
            root["cluster"]![key] = value.DeepClone();
        }
        foreach (var (key, value) in AdminExtra)
        {
            root["admin"]![key] = value.DeepClone();
        }
        Customize?.Invoke(root);
        return root;
    }

    public string ToJson() => ToJsonObject().ToJsonString();

    /// <summary>Starts <c>run</c> with this config.</summary>
    public NodeProcess Run(string name, IReadOnlyDictionary<string, string?>? environment = null) =>
        NodeProcess.Start("run", ToJson(), name, AdminPort, environment);
}
