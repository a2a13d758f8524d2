namespace Centrifugo.Actors.Configuration;

// The validated, effective configuration of a node. Built only by ConfigLoader (which applies
// Centrifugo's defaults, env overrides and validation); everything downstream may rely on the
// invariants documented on each property.

/// <summary>The whole node configuration (file + environment, validated).</summary>
internal sealed record NodeOptions
{
    public required ApiOptions Api { get; init; }
    public required IReadOnlyList<ConsumerOptions> Consumers { get; init; }
    public required ClusterOptions Cluster { get; init; }
    public required AdminOptions Admin { get; init; }
    /// <summary>log.level / log.format (LogConfig).</summary>
    public LogOptions Log { get; init; } = new();
}

internal enum LogFormat { Text, Json }

/// <summary>Console logging: Centrifugo's <c>log.level</c> plus our <c>log.format</c>.</summary>
internal sealed record LogOptions
{
    public Microsoft.Extensions.Logging.LogLevel Level { get; init; } = Microsoft.Extensions.Logging.LogLevel.Information;
    public LogFormat Format { get; init; } = LogFormat.Text;
}

/// <summary>Centrifugo server HTTP API the commands are delivered to.</summary>
internal sealed record ApiOptions
{
    /// <summary>Base URL including the handler prefix, no trailing slash, e.g. http://127.0.0.1:8000/api.</summary>
    public required string Url { get; init; }
    /// <summary>Sent as X-API-Key. Secret: never logged or printed.</summary>
    public required string Key { get; init; }
    /// <summary>Per-request timeout. Default 5 s.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Commands per POST /batch (parallel:false). 1 = one POST /{method} per command. Default 100.</summary>
    public int MaxBatchSize { get; init; } = 100;
}

/// <summary>
/// One entry of <c>consumers</c>. A closed hierarchy: one sealed subtype per consumer type this node runs, chosen by the
/// binder's switch on <c>type</c> (the one place a new type is added); use sites match on the subtype.
/// </summary>
internal abstract record ConsumerOptions
{
    // Closed: only the subtypes below derive from it.
    private protected ConsumerOptions() { }

    /// <summary>Matches ^[a-zA-Z0-9_]{2,}$, unique.</summary>
    public required string Name { get; init; }
    /// <summary>v6 `enabled` if present, else !v5.2 `disabled`, else true.</summary>
    public bool Enabled { get; init; } = true;
}

/// <summary>type "postgresql": an outbox table.</summary>
internal sealed record PostgresConsumer : ConsumerOptions
{
    public required PostgresConsumerOptions Postgresql { get; init; }
}

/// <summary>type "kafka": topics read as one member of a consumer group.</summary>
internal sealed record KafkaConsumer : ConsumerOptions
{
    public required KafkaConsumerOptions Kafka { get; init; }
}

/// <summary>Common TLS object (v6) / flat TLS keys (v5.2 Kafka). PEM values: file path, raw PEM or base64 PEM.</summary>
internal sealed record TlsOptions
{
    public bool Enabled { get; init; }
    public string? CertPem { get; init; }
    /// <summary>Secret.</summary>
    public string? KeyPem { get; init; }
    public string? ServerCaPem { get; init; }
    public string? ClientCaPem { get; init; }
    public bool InsecureSkipVerify { get; init; }
    public string? ServerName { get; init; }
}

internal sealed record PostgresConsumerOptions
{
    /// <summary>The value of every optional field when the configuration leaves it zero (Centrifugo's defaults).</summary>
    public static PostgresConsumerOptions Defaults { get; } = new() { Dsn = "", OutboxTableName = "", DeadLetterTableName = "" };

    /// <summary>Secret (password). libpq key/value or postgres:// URL form.</summary>
    public required string Dsn { get; init; }
    /// <summary>Validated identifier, optionally schema-qualified (schema.table); quoted by OutboxSql.</summary>
    public required string OutboxTableName { get; init; }
    public int NumPartitions { get; init; } = 1;
    public int PartitionSelectLimit { get; init; } = 100;
    /// <summary>Our extension. Payload bytes a read takes: rows stop being added once reached (at least one row).</summary>
    public int PartitionSelectMaxBytes { get; init; } = 4 << 20;
    /// <summary>Our extension. A row with a larger payload is dead-lettered by its size without being read.</summary>
    public int PayloadMaxBytes { get; init; } = 16 << 20;
    public TimeSpan PartitionPollInterval { get; init; } = TimeSpan.FromMilliseconds(300);
    public string PartitionNotificationChannel { get; init; } = "";
    /// <summary>Secret. Separate DSN for LISTEN (PgBouncer setups); "" = use Dsn.</summary>
    public string PartitionNotificationDsn { get; init; } = "";
    public TlsOptions Tls { get; init; } = new();
    public bool UseTryLock { get; init; }
    /// <summary>Our extension. Default "&lt;outbox_table_name&gt;_dead_letter".</summary>
    public required string DeadLetterTableName { get; init; }
    /// <summary>
    /// Our extension. Publish and broadcast commands without an <c>idempotency_key</c> get one derived from the consumer,
    /// the partition and the outbox row id, so Centrifugo drops their redeliveries (docs/design.md, "Idempotency keys").
    /// </summary>
    public bool DeriveIdempotencyKey { get; init; }
    /// <summary>
    /// Our extension. Every partition pass also takes Centrifugo's own lock of the partition
    /// (<c>hashtext('centrifugo_partition_lock_' || name || partition)</c>), so that Centrifugo's built-in consumer and
    /// this one exclude each other on one table while a migration runs both.
    /// </summary>
    public bool CentrifugoCompatibleLock { get; init; }
}

internal sealed record PublicationDataModeOptions
{
    public bool Enabled { get; init; }
    public string ChannelsHeader { get; init; } = "centrifugo-channels";
    public string IdempotencyKeyHeader { get; init; } = "centrifugo-idempotency-key";
    public string DeltaHeader { get; init; } = "centrifugo-delta";
    public string VersionHeader { get; init; } = "centrifugo-version";
    public string VersionEpochHeader { get; init; } = "centrifugo-version-epoch";
    public string TagsHeaderPrefix { get; init; } = "centrifugo-tag-";
}

internal sealed record KafkaConsumerOptions
{
    /// <summary>The value of every optional field when the configuration leaves it zero (Centrifugo's defaults and ours).</summary>
    public static KafkaConsumerOptions Defaults { get; } = new() { Brokers = [], Topics = [], ConsumerGroup = "" };

    public required IReadOnlyList<string> Brokers { get; init; }
    public required IReadOnlyList<string> Topics { get; init; }
    public required string ConsumerGroup { get; init; }
    public int MaxPollRecords { get; init; } = 100;
    public int FetchMaxBytes { get; init; }
    public TimeSpan FetchMaxWait { get; init; } = TimeSpan.FromMilliseconds(500);
    public bool FetchReadUncommitted { get; init; }
    /// <summary>
    /// Records queued in a partition's librdkafka queue before librdkafka stops fetching it. 0 = fetch only while
    /// nothing is queued (configured as -1, like Centrifugo). Default 10,000 (Centrifugo: 1,000), what the benchmarks
    /// ran; librdkafka discards nothing at the limit. Memory stays bounded by <see cref="PartitionQueueMaxBytes"/> as well.
    /// </summary>
    public int PartitionQueueMaxSize { get; init; } = 10_000;
    /// <summary>Our extension: bytes (keys + values + headers) queued per partition before librdkafka stops fetching it. Default
    /// 4 MiB.</summary>
    public long PartitionQueueMaxBytes { get; init; } = 4 * 1024 * 1024;
    public TimeSpan DialTimeout { get; init; } = TimeSpan.FromSeconds(3);
    public TlsOptions Tls { get; init; } = new();
    /// <summary>"", "plain", "scram-sha-256", "scram-sha-512" ("aws-msk-iam" is rejected: not supported by librdkafka here).</summary>
    public string SaslMechanism { get; init; } = "";
    public string SaslUser { get; init; } = "";
    /// <summary>Secret.</summary>
    public string SaslPassword { get; init; } = "";
    /// <summary>
    /// Static group membership (Centrifugo's option): when set, each node joins with group.instance.id
    /// "&lt;instance_id&gt;-&lt;pod name&gt;" (the pod name from cluster.pod_name; alone when that is empty).
    /// </summary>
    public string InstanceId { get; init; } = "";
    /// <summary>Our extension: the group protocol, classic (cooperative-sticky) or consumer (KIP-848). Default classic.</summary>
    public KafkaGroupProtocol GroupProtocol { get; init; } = KafkaGroupProtocol.Classic;
    /// <summary>
    /// Our extension: how long the group keeps a silent member's partitions. Classic: sent as session.timeout.ms.
    /// Consumer protocol: the broker's group.consumer.session.timeout.ms, used only for the local fence. Default 6 s.
    /// </summary>
    public TimeSpan SessionTimeout { get; init; } = TimeSpan.FromSeconds(6);
    /// <summary>
    /// Our extension: how often a member heartbeats. Classic: sent as heartbeat.interval.ms. Consumer protocol: the
    /// broker's group.consumer.heartbeat.interval.ms, used only for the local fence. Default 500 ms.
    /// </summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMilliseconds(500);
    public string MethodHeader { get; init; } = "centrifugo-method";
    public PublicationDataModeOptions PublicationDataMode { get; init; } = new();
    /// <summary>Our extension; "" = "&lt;topic&gt;.dead_letter" per source topic.</summary>
    public string DeadLetterTopic { get; init; } = "";
    /// <summary>
    /// Our extension. Publish and broadcast commands without an <c>idempotency_key</c> get one derived from the consumer,
    /// the partition and the topic and offset, so Centrifugo drops their redeliveries (docs/design.md, "Idempotency keys").
    /// </summary>
    public bool DeriveIdempotencyKey { get; init; }
}

internal sealed record ClusterOptions
{
    /// <summary>Akka actor system name; all nodes of one cluster must share it.</summary>
    public string SystemName { get; init; } = "centrifugo-actors";
    public string Hostname { get; init; } = "127.0.0.1";
    /// <summary>Remoting port; 0 = any free port.</summary>
    public int Port { get; init; } = 4053;
    /// <summary>akka.tcp://system@host:port addresses; empty = form a one-node cluster with itself.</summary>
    public IReadOnlyList<string> SeedNodes { get; init; } = [];
    /// <summary>
    /// Accepted for configurations written for earlier versions and otherwise unused: every partition is its own shard,
    /// so that the allocation balances partitions, not hash buckets of them.
    /// </summary>
    public int NumberOfShards { get; init; } = 100;
    /// <summary>Failure detector: how often a node heartbeats the nodes that monitor it. Default 500 ms.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMilliseconds(500);
    /// <summary>Failure detector: heartbeats may be this late before a node is marked unreachable. Default 1.5 s.</summary>
    public TimeSpan AcceptableHeartbeatPause { get; init; } = TimeSpan.FromMilliseconds(1500);
    /// <summary>
    /// Split Brain Resolver: how long the set of unreachable nodes must stay unchanged before the side that keeps the
    /// majority downs the others (and takes over their partitions). Default 3 s.
    /// </summary>
    public TimeSpan DowningStableAfter { get; init; } = TimeSpan.FromSeconds(3);
    /// <summary>
    /// How often the shard coordinator checks where partitions run: the spread of the outbox's over the nodes, and
    /// Kafka partitions whose group moved them between running nodes. Default 500 ms.
    /// </summary>
    public TimeSpan RebalanceInterval { get; init; } = TimeSpan.FromMilliseconds(500);
    /// <summary>
    /// PostgreSQL as a failure detector: each node holds a session-level advisory lock on the database of its first
    /// postgresql consumer, and downs a member at once when that member's lock is released, i.e. its process died
    /// (docs/design.md, "Fail-over"). Default true; off without a postgresql consumer.
    /// </summary>
    public bool PostgresLiveness { get; init; } = true;
    /// <summary>
    /// The Kubernetes pod this node runs in (the StatefulSet sets it from the downward API): carried as the cluster role
    /// <c>pod-NAME</c>, so every node can show pod names next to member addresses. Empty outside Kubernetes.
    /// </summary>
    public string PodName { get; init; } = "";

    // Cluster formation through Akka.Discovery (cluster.discovery / cluster.bootstrap).
    /// <summary>How the node finds the cluster: the static seed nodes (default) or a discovery method.</summary>
    public ClusterDiscovery Discovery { get; init; } = ClusterDiscovery.SeedNodes;
    /// <summary>Discovery settings; used only when <see cref="Discovery"/> is not SeedNodes.</summary>
    public BootstrapOptions Bootstrap { get; init; } = new();
}

/// <summary>cluster.discovery: "" or "seed_nodes" (default), "kubernetes" (Kubernetes API), "config" (a fixed contact-point
/// list).</summary>
internal enum ClusterDiscovery { SeedNodes, Kubernetes, Config }

/// <summary>
/// cluster.bootstrap: how the discovered peers become seed nodes. The peers are looked up every
/// <see cref="Interval"/>; once at least <see cref="RequiredContactPoints"/> are seen twice in a row, they are joined
/// as seed nodes in address order (the lowest forms a new cluster if none exists, like Akka's Cluster Bootstrap).
/// </summary>
internal sealed record BootstrapOptions
{
    /// <summary>Service name looked up in discovery; replaces {0} in the pod label selector. Default "centrifugo-actors".</summary>
    public string ServiceName { get; init; } = "centrifugo-actors";
    /// <summary>Peers that must be discovered before joining. Default 2.</summary>
    public int RequiredContactPoints { get; init; } = 2;
    /// <summary>Time between lookups. Default 2 s.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>Kubernetes: label selector of the pods. Default "app.kubernetes.io/name={0}".</summary>
    public string PodLabelSelector { get; init; } = "app.kubernetes.io/name={0}";
    /// <summary>Kubernetes: namespace of the pods; "" = the pod's own (from its service-account files).</summary>
    public string PodNamespace { get; init; } = "";
    /// <summary>Kubernetes: name of the container port of Akka.Remote. Default "remoting".</summary>
    public string PortName { get; init; } = "remoting";
    /// <summary>Config discovery: the remoting host:port of every node (VMs, tests).</summary>
    public IReadOnlyList<string> ContactPoints { get; init; } = [];
}

internal sealed record AdminOptions
{
    /// <summary>host:port of the admin HTTP endpoint (health, metrics, status); "" disables it.</summary>
    public string Address { get; init; } = "127.0.0.1:9110";

    /// <summary>The address Kestrel binds (validated by the loader); null when the endpoint is disabled.</summary>
    public System.Net.IPEndPoint? Endpoint => TryParseEndpoint(Address, out var endpoint) ? endpoint : null;
    /// <summary>
    /// Secret. Bearer token required by the mutating admin routes (POST /cluster/leave, /cluster/down); "" = none,
    /// allowed only while the endpoint is bound to loopback.
    /// </summary>
    public string Token { get; init; } = "";

    /// <summary>
    /// host:port to the address Kestrel binds: "", "*", "0.0.0.0" = every IPv4 interface, "[::]" = every interface,
    /// "localhost" = loopback, else an IP literal. False for anything else (a DNS name) and for "" (disabled).
    /// </summary>
    public static bool TryParseEndpoint(string address, out System.Net.IPEndPoint endpoint)
    {
        endpoint = null!;
        var colon = address.LastIndexOf(':');
        if (colon < 0 || !int.TryParse(address[(colon + 1)..], System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            return false;
        }

        var host = address[..colon];
        System.Net.IPAddress? ip = host switch
        {
            "" or "*" or "0.0.0.0" => System.Net.IPAddress.Any,
            "localhost" => System.Net.IPAddress.Loopback,
            _ => System.Net.IPAddress.TryParse(host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host, out var parsed)
                ? parsed : null,
        };
        if (ip is null)
        {
            return false;
        }

        endpoint = new System.Net.IPEndPoint(ip, port);
        return true;
    }
}
