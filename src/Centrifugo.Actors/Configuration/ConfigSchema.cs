namespace Centrifugo.Actors.Configuration;

internal enum FieldKind
{
    String,
    Bool,
    /// <summary>JSON integer that fits in Int32.</summary>
    Int,
    /// <summary>Go duration string or integer nanoseconds.</summary>
    Duration,
    /// <summary>JSON array of strings; space-separated in env.</summary>
    StringList,
    Object,
    /// <summary>Accepted without looking inside (Centrifugo's own settings we ignore).</summary>
    Any,
}

/// <summary>One config key. The same table drives unknown-key/type checks and the env override names.</summary>
internal sealed record FieldSpec(
    string Name, FieldKind Kind, bool Secret = false, IReadOnlyList<FieldSpec>? Fields = null, bool FromEnv = true)
{
    public FieldSpec? Find(string name) => Fields?.FirstOrDefault(f => f.Name == name);
}

/// <summary>
/// Every key we read, in Centrifugo's names (v6 plus the v5.2 ones that survive normalisation; the v5.2 flat
/// Kafka TLS keys are rewritten into the <c>tls</c> object before these checks, see <see cref="KafkaLegacyTls"/>).
/// </summary>
internal static class ConfigSchema
{
    public static readonly IReadOnlyList<FieldSpec> Tls =
    [
        new("enabled", FieldKind.Bool),
        new("cert_pem", FieldKind.String),
        new("key_pem", FieldKind.String, Secret: true),
        new("server_ca_pem", FieldKind.String),
        new("client_ca_pem", FieldKind.String),
        new("insecure_skip_verify", FieldKind.Bool),
        new("server_name", FieldKind.String),
    ];

    public static readonly IReadOnlyList<FieldSpec> Postgresql =
    [
        new("dsn", FieldKind.String, Secret: true),
        new("outbox_table_name", FieldKind.String),
        new("num_partitions", FieldKind.Int),
        new("partition_select_limit", FieldKind.Int),
        new("partition_select_max_bytes", FieldKind.Int),
        new("payload_max_bytes", FieldKind.Int),
        new("partition_poll_interval", FieldKind.Duration),
        new("partition_notification_channel", FieldKind.String),
        new("partition_notification_dsn", FieldKind.String, Secret: true),
        new("tls", FieldKind.Object, Fields: Tls),
        new("use_try_lock", FieldKind.Bool),
        new("dead_letter_table_name", FieldKind.String),
        new("derive_idempotency_key", FieldKind.Bool),
        new("centrifugo_compatible_lock", FieldKind.Bool),
    ];

    public static readonly IReadOnlyList<FieldSpec> PublicationDataMode =
    [
        new("enabled", FieldKind.Bool),
        new("channels_header", FieldKind.String),
        new("idempotency_key_header", FieldKind.String),
        new("delta_header", FieldKind.String),
        new("version_header", FieldKind.String),
        new("version_epoch_header", FieldKind.String),
        new("tags_header_prefix", FieldKind.String),
    ];

    public static readonly IReadOnlyList<FieldSpec> Kafka =
    [
        new("brokers", FieldKind.StringList),
        new("topics", FieldKind.StringList),
        new("consumer_group", FieldKind.String),
        new("max_poll_records", FieldKind.Int),
        new("fetch_max_bytes", FieldKind.Int),
        new("fetch_max_wait", FieldKind.Duration),
        new("fetch_read_uncommitted", FieldKind.Bool),
        new("partition_queue_max_size", FieldKind.Int),
        new("partition_queue_max_bytes", FieldKind.Int),
        new("dial_timeout", FieldKind.Duration),
        new("tls", FieldKind.Object, Fields: Tls),
        new("sasl_mechanism", FieldKind.String),
        new("sasl_user", FieldKind.String),
        new("sasl_password", FieldKind.String, Secret: true),
        new("assume_role_arn", FieldKind.String),
        new("instance_id", FieldKind.String),
        new("group_protocol", FieldKind.String),
        new("session_timeout", FieldKind.Duration),
        new("heartbeat_interval", FieldKind.Duration),
        new("method_header", FieldKind.String),
        new("publication_data_mode", FieldKind.Object, Fields: PublicationDataMode),
        new("dead_letter_topic", FieldKind.String),
        new("derive_idempotency_key", FieldKind.Bool),
        // v5.4 only (replaced by partition_queue_max_size in v6); accepted so v5 configs load, no effect.
        new("partition_buffer_size", FieldKind.Int),
    ];

    /// <summary>Centrifugo's consumer types we do not run: valid in a config, must be disabled here.</summary>
    public static readonly IReadOnlyList<string> UnsupportedTypes =
        ["nats_jetstream", "redis_stream", "google_pub_sub", "aws_sqs", "azure_service_bus"];

    public static readonly IReadOnlyList<FieldSpec> Consumer =
    [
        new("name", FieldKind.String, FromEnv: false),
        new("type", FieldKind.String),
        new("enabled", FieldKind.Bool),
        // v5.2; no env form (Centrifugo v5 had none and v6 has `enabled`).
        new("disabled", FieldKind.Bool, FromEnv: false),
        new("postgresql", FieldKind.Object, Fields: Postgresql),
        new("kafka", FieldKind.Object, Fields: Kafka),
        .. UnsupportedTypes.Select(t => new FieldSpec(t, FieldKind.Any, FromEnv: false)),
    ];

    public static readonly IReadOnlyList<FieldSpec> Api =
    [
        new("url", FieldKind.String),
        new("key", FieldKind.String, Secret: true),
        new("timeout", FieldKind.Duration),
        new("max_batch_size", FieldKind.Int),
    ];

    public static readonly IReadOnlyList<FieldSpec> Bootstrap =
    [
        new("service_name", FieldKind.String),
        new("required_contact_points", FieldKind.Int),
        new("interval", FieldKind.Duration),
        new("pod_label_selector", FieldKind.String),
        new("pod_namespace", FieldKind.String),
        new("port_name", FieldKind.String),
        new("contact_points", FieldKind.StringList),
    ];

    public static readonly IReadOnlyList<FieldSpec> Cluster =
    [
        new("system_name", FieldKind.String),
        new("hostname", FieldKind.String),
        new("port", FieldKind.Int),
        new("seed_nodes", FieldKind.StringList),
        new("number_of_shards", FieldKind.Int),
        new("heartbeat_interval", FieldKind.Duration),
        new("acceptable_heartbeat_pause", FieldKind.Duration),
        new("downing_stable_after", FieldKind.Duration),
        new("rebalance_interval", FieldKind.Duration),
        // Accepted so configurations of earlier versions load; no effect (every node is a member of the group now).
        new("kafka_standby_member", FieldKind.Bool),
        new("postgres_liveness", FieldKind.Bool),
        new("pod_name", FieldKind.String),
        // Cluster formation through Akka.Discovery (BootstrapConfig).
        new("discovery", FieldKind.String),
        new("bootstrap", FieldKind.Object, Fields: Bootstrap),
    ];

    public static readonly IReadOnlyList<FieldSpec> Admin =
    [
        new("address", FieldKind.String),
        new("token", FieldKind.String, Secret: true),
        .. CentrifugoKeys.AdminSection.Order(StringComparer.Ordinal)
            .Select(k => new FieldSpec(k, FieldKind.Any, Secret: k is "password" or "secret", FromEnv: false)),
    ];

    /// <summary>Our own top-level sections (everything else must be a Centrifugo key).</summary>
    public static readonly IReadOnlyList<string> OwnSections = ["api", "consumers", "cluster", "admin"];

    /// <summary>
    /// Every settable leaf under <paramref name="fields"/> as (JSON path, env suffix), e.g.
    /// (["tls","enabled"], "TLS_ENABLED"): the envconfig naming Centrifugo uses (upper-cased, '_'-joined).
    /// </summary>
    public static IEnumerable<(IReadOnlyList<FieldSpec> Path, string EnvSuffix)> EnvLeaves(IReadOnlyList<FieldSpec> fields)
    {
        foreach (var field in fields)
        {
            if (!field.FromEnv || field.Kind == FieldKind.Any)
            {
                continue;
            }

            if (field.Kind == FieldKind.Object)
            {
                foreach (var (path, suffix) in EnvLeaves(field.Fields!))
                {
                    yield return ([field, .. path], field.Name.ToUpperInvariant() + "_" + suffix);
                }
            }
            else
            {
                yield return ([field], field.Name.ToUpperInvariant());
            }
        }
    }
}
