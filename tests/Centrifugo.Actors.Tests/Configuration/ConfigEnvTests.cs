using Centrifugo.Actors.Configuration;

namespace Centrifugo.Actors.Tests.Configuration;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class ConfigEnvTests
{
    private const string PgEnvDsn = "postgres://envuser:env-pw@envhost:5432/envdb";

    [Fact]
    public void Centrifugo_consumers_json_array_replaces_the_file_list()
    {
        var options = Cfg.Load(
            Cfg.Config(Cfg.Pg("from_file")),
            ("CENTRIFUGO_CONSUMERS",
                $$$"""[{"name":"from_env","type":"kafka","kafka":{"brokers":["b:9092"],"topics":["t"],"consumer_group":"g"}}]"""));

        var consumer = Assert.Single(options.Consumers);
        Assert.Equal("from_env", consumer.Name);
        Assert.IsType<KafkaConsumer>(consumer);
    }

    [Fact]
    public void Centrifugo_consumers_names_create_entries_configured_by_per_consumer_env()
    {
        var options = Cfg.Load(
            Cfg.Config(Cfg.Pg("from_file")),
            ("CENTRIFUGO_CONSUMERS", "pg_a  kf_b"),
            ("CENTRIFUGO_CONSUMERS_PG_A_TYPE", "postgresql"),
            ("CENTRIFUGO_CONSUMERS_PG_A_POSTGRESQL_DSN", PgEnvDsn),
            ("CENTRIFUGO_CONSUMERS_PG_A_POSTGRESQL_OUTBOX_TABLE_NAME", "outbox_a"),
            ("CENTRIFUGO_CONSUMERS_KF_B_TYPE", "kafka"),
            ("CENTRIFUGO_CONSUMERS_KF_B_ENABLED", "false"));

        Assert.Equal(["pg_a", "kf_b"], options.Consumers.Select(c => c.Name));
        var pg = Assert.IsType<PostgresConsumer>(options.Consumers[0]).Postgresql;
        Assert.Equal(PgEnvDsn, pg.Dsn);
        Assert.Equal("outbox_a", pg.OutboxTableName);
        Assert.False(options.Consumers[1].Enabled);
    }

    [Fact]
    public void V6_env_form_overrides_documented_consumer_fields()
    {
        var options = Cfg.Load(
            Cfg.Config(Cfg.Pg("my_pg", extra: ""","enabled":false"""), Cfg.Kafka("my_kafka")),
            ("CENTRIFUGO_CONSUMERS_MY_PG_ENABLED", "true"),
            ("CENTRIFUGO_CONSUMERS_MY_PG_POSTGRESQL_DSN", PgEnvDsn),
            ("CENTRIFUGO_CONSUMERS_MY_PG_POSTGRESQL_NUM_PARTITIONS", "12"),
            ("CENTRIFUGO_CONSUMERS_MY_PG_POSTGRESQL_PARTITION_POLL_INTERVAL", "2s"),
            ("CENTRIFUGO_CONSUMERS_MY_PG_POSTGRESQL_TLS_KEY_PEM", Cfg.TlsKey),
            ("CENTRIFUGO_CONSUMERS_MY_KAFKA_KAFKA_BROKERS", "k1:9092 k2:9092"),
            ("CENTRIFUGO_CONSUMERS_MY_KAFKA_KAFKA_SASL_MECHANISM", "plain"),
            ("CENTRIFUGO_CONSUMERS_MY_KAFKA_KAFKA_SASL_USER", "env-user"),
            ("CENTRIFUGO_CONSUMERS_MY_KAFKA_KAFKA_SASL_PASSWORD", Cfg.SaslPassword),
            ("CENTRIFUGO_CONSUMERS_MY_KAFKA_KAFKA_TLS_ENABLED", "T"),
            ("CENTRIFUGO_CONSUMERS_MY_KAFKA_KAFKA_PUBLICATION_DATA_MODE_ENABLED", "1"),
            ("CENTRIFUGO_CONSUMERS_MY_KAFKA_KAFKA_PUBLICATION_DATA_MODE_CHANNELS_HEADER", "x-channels"));

        var pg = Assert.IsType<PostgresConsumer>(options.Consumers[0]);
        Assert.True(pg.Enabled);
        Assert.Equal(PgEnvDsn, pg.Postgresql.Dsn);
        Assert.Equal(12, pg.Postgresql.NumPartitions);
        Assert.Equal(TimeSpan.FromSeconds(2), pg.Postgresql.PartitionPollInterval);
        Assert.Equal(Cfg.TlsKey, pg.Postgresql.Tls.KeyPem);
        var kafka = Assert.IsType<KafkaConsumer>(options.Consumers[1]).Kafka;
        Assert.Equal(["k1:9092", "k2:9092"], kafka.Brokers);
        Assert.Equal("env-user", kafka.SaslUser);
        Assert.Equal(Cfg.SaslPassword, kafka.SaslPassword);
        Assert.True(kafka.Tls.Enabled);
        Assert.True(kafka.PublicationDataMode.Enabled);
        Assert.Equal("x-channels", kafka.PublicationDataMode.ChannelsHeader);
    }

    [Fact]
    public void V6_env_form_can_change_the_consumer_type()
    {
        var consumer = Cfg.One(
            Cfg.Config("""{"name":"switch","type":"postgresql"}"""),
            ("CENTRIFUGO_CONSUMERS_SWITCH_TYPE", "kafka"),
            ("CENTRIFUGO_CONSUMERS_SWITCH_KAFKA_BROKERS", "b:9092"),
            ("CENTRIFUGO_CONSUMERS_SWITCH_KAFKA_TOPICS", "t"),
            ("CENTRIFUGO_CONSUMERS_SWITCH_KAFKA_CONSUMER_GROUP", "g"));

        Assert.IsType<KafkaConsumer>(consumer);
    }

    /// <summary>(form, type, variable suffix): every non-secret leaf of each type block, in the v6 and the v5.2 form.</summary>
    public static TheoryData<string, string, string> EveryNonSecretLeaf()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var (type, fields) in new[] { ("postgresql", ConfigSchema.Postgresql), ("kafka", ConfigSchema.Kafka) })
        {
            foreach (var (path, suffix) in ConfigSchema.EnvLeaves(fields))
            {
                var leaf = path[^1];
                // Secrets are masked in the printed config; they have their own tests. The v5.4 no-op and the rejected
                // aws-msk-iam option change nothing printable.
                if (leaf.Secret || leaf.Name is "partition_buffer_size" or "assume_role_arn")
                {
                    continue;
                }

                data.Add("v6", type, suffix);
                data.Add("v5.2", type, suffix);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(EveryNonSecretLeaf))]
    public void Every_type_block_field_has_an_env_override_in_the_v6_and_the_v52_form(string form, string type, string suffix)
    {
        var json = type == "postgresql" ? Cfg.Config(Cfg.Pg("env_c")) : Cfg.Config(Cfg.Kafka("env_c", block: ""","sasl_user":"u" """));
        var baseline = ConfigLoader.ToRedactedJson(Cfg.Load(json));
        var variable = form == "v6"
            ? $"CENTRIFUGO_CONSUMERS_ENV_C_{type.ToUpperInvariant()}_{suffix}"
            : $"CENTRIFUGO_CONSUMERS_{type.ToUpperInvariant()}_ENV_C_{suffix}";

        var changed = ConfigLoader.ToRedactedJson(Cfg.Load(json, (variable, SampleValue(suffix))));

        Assert.NotEqual(baseline, changed);
    }

    [Fact]
    public void V52_documented_env_names_override_dsn_brokers_and_sasl_credentials()
    {
        var options = Cfg.Load(
            Cfg.Config(Cfg.Pg("pg_main"), Cfg.Kafka("kf_main", block: ""","sasl_mechanism":"plain" """)),
            ("CENTRIFUGO_CONSUMERS_POSTGRESQL_PG_MAIN_DSN", PgEnvDsn),
            ("CENTRIFUGO_CONSUMERS_KAFKA_KF_MAIN_BROKERS", "x1:9092 x2:9092"),
            ("CENTRIFUGO_CONSUMERS_KAFKA_KF_MAIN_SASL_USER", "legacy-user"),
            ("CENTRIFUGO_CONSUMERS_KAFKA_KF_MAIN_SASL_PASSWORD", Cfg.SaslPassword));

        Assert.Equal(PgEnvDsn, Assert.IsType<PostgresConsumer>(options.Consumers[0]).Postgresql.Dsn);
        var kafka = Assert.IsType<KafkaConsumer>(options.Consumers[1]).Kafka;
        Assert.Equal(["x1:9092", "x2:9092"], kafka.Brokers);
        Assert.Equal("legacy-user", kafka.SaslUser);
        Assert.Equal(Cfg.SaslPassword, kafka.SaslPassword);
    }

    [Fact]
    public void V52_env_flat_tls_names_map_onto_the_tls_object()
    {
        var tls = Cfg.One<KafkaConsumer>(
            Cfg.Config(Cfg.Kafka("kf_main")),
            ("CENTRIFUGO_CONSUMERS_KAFKA_KF_MAIN_TLS", "true"),
            ("CENTRIFUGO_CONSUMERS_KAFKA_KF_MAIN_TLS_ROOT_CA", Cfg.TlsCa),
            ("CENTRIFUGO_CONSUMERS_KAFKA_KF_MAIN_TLS_KEY_PEM", Cfg.TlsKey),
            ("CENTRIFUGO_CONSUMERS_KAFKA_KF_MAIN_SERVER_NAME", "broker")).Kafka.Tls;

        Assert.True(tls.Enabled);
        Assert.Equal(Cfg.TlsCa, tls.ServerCaPem);
        Assert.Equal(Cfg.TlsKey, tls.KeyPem);
        Assert.Equal("broker", tls.ServerName);
    }

    [Fact]
    public void V6_env_form_wins_over_v52_form_for_the_same_field()
    {
        var dsn = Cfg.One<PostgresConsumer>(
            Cfg.Config(Cfg.Pg("pg_main")),
            ("CENTRIFUGO_CONSUMERS_POSTGRESQL_PG_MAIN_DSN", "postgres://legacy@h/db"),
            ("CENTRIFUGO_CONSUMERS_PG_MAIN_POSTGRESQL_DSN", PgEnvDsn)).Postgresql.Dsn;

        Assert.Equal(PgEnvDsn, dsn);
    }

    [Fact]
    public void A_name_that_reads_both_ways_belongs_to_the_consumer_whose_v6_name_it_is()
    {
        // CENTRIFUGO_CONSUMERS_KAFKA_A_KAFKA_TLS_ENABLED is v6 for "kafka_a" (kafka.tls.enabled) and v5.2 for "a_kafka".
        const string variable = "CENTRIFUGO_CONSUMERS_KAFKA_A_KAFKA_TLS_ENABLED";
        // (Distinct consumer groups: two consumers on one group and topic are refused.)
        var options = Cfg.Load(
            Cfg.Config(Cfg.Kafka("kafka_a"), Cfg.Kafka("a_kafka").Replace("\"cg\"", "\"cg2\"", StringComparison.Ordinal)),
            (variable, "true"));

        var kafka = options.Consumers.OfType<KafkaConsumer>().ToDictionary(c => c.Name, c => c.Kafka);
        Assert.True(kafka["kafka_a"].Tls.Enabled);
        Assert.False(kafka["a_kafka"].Tls.Enabled);
    }

    [Fact]
    public void A_v52_name_applies_when_no_configured_consumer_claims_it_in_v6_form()
    {
        var consumer = Cfg.One<KafkaConsumer>(Cfg.Config(Cfg.Kafka("a_kafka")), ("CENTRIFUGO_CONSUMERS_KAFKA_A_KAFKA_TLS_ENABLED", "true"));

        Assert.True(consumer.Kafka.Tls.Enabled);
    }

    [Fact]
    public void Consumer_named_like_the_v52_prefix_still_gets_its_v6_variables()
    {
        var consumer = Cfg.One<PostgresConsumer>(
            Cfg.Config(Cfg.Pg("postgresql_x")), ("CENTRIFUGO_CONSUMERS_POSTGRESQL_X_POSTGRESQL_NUM_PARTITIONS", "3"));

        Assert.Equal(3, consumer.Postgresql.NumPartitions);
    }

    [Fact]
    public void Empty_env_value_counts_as_unset()
    {
        var options = Cfg.Load(
            Cfg.Config(Cfg.Pg("pg_main")),
            ("CENTRIFUGO_CONSUMERS", ""),
            ("CENTRIFUGO_CONSUMERS_PG_MAIN_POSTGRESQL_DSN", ""),
            ("CENTRIFUGO_API_KEY", ""));

        Assert.Equal(Cfg.PgDsn, Assert.IsType<PostgresConsumer>(Assert.Single(options.Consumers)).Postgresql.Dsn);
        Assert.Equal(Cfg.ApiKey, options.Api.Key);
    }

    [Theory]
    [InlineData("1", true)]
    [InlineData("t", true)]
    [InlineData("T", true)]
    [InlineData("TRUE", true)]
    [InlineData("true", true)]
    [InlineData("True", true)]
    [InlineData("0", false)]
    [InlineData("f", false)]
    [InlineData("F", false)]
    [InlineData("FALSE", false)]
    [InlineData("false", false)]
    [InlineData("False", false)]
    public void Env_booleans_use_go_parse_bool(string value, bool expected) =>
        Assert.Equal(expected, Cfg.One<PostgresConsumer>(
            Cfg.Config(Cfg.Pg("pg_main")), ("CENTRIFUGO_CONSUMERS_PG_MAIN_POSTGRESQL_USE_TRY_LOCK", value)).Postgresql.UseTryLock);

    [Fact]
    public void Centrifugo_compatible_lock_is_set_like_centrifugo_options()
    {
        Assert.True(Cfg.One<PostgresConsumer>(Cfg.Config(Cfg.Pg("pg_main")),
            ("CENTRIFUGO_CONSUMERS_PG_MAIN_POSTGRESQL_CENTRIFUGO_COMPATIBLE_LOCK", "true")).Postgresql.CentrifugoCompatibleLock);
        Assert.False(Cfg.One<PostgresConsumer>(Cfg.Config(Cfg.Pg("pg_main"))).Postgresql.CentrifugoCompatibleLock);
    }

    [Theory]
    [InlineData("yes")]
    [InlineData("on")]
    [InlineData("tRuE")]
    public void Env_boolean_outside_go_set_is_an_error_naming_the_variable(string value)
    {
        var message = Cfg.Error(Cfg.Config(Cfg.Pg("pg_main")), ("CENTRIFUGO_CONSUMERS_PG_MAIN_ENABLED", value));

        Assert.Equal(
            "CENTRIFUGO_CONSUMERS_PG_MAIN_ENABLED: expected a boolean (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False)", message);
    }

    [Fact]
    public void Env_integer_error_names_the_variable() =>
        Assert.Equal(
            "CENTRIFUGO_CONSUMERS_PG_MAIN_POSTGRESQL_NUM_PARTITIONS: expected an integer",
            Cfg.Error(Cfg.Config(Cfg.Pg("pg_main")), ("CENTRIFUGO_CONSUMERS_PG_MAIN_POSTGRESQL_NUM_PARTITIONS", "eight")));

    [Fact]
    public void Env_duration_error_names_the_variable() =>
        Assert.StartsWith(
            "CENTRIFUGO_CONSUMERS_PG_MAIN_POSTGRESQL_PARTITION_POLL_INTERVAL is missing a unit",
            Cfg.Error(Cfg.Config(Cfg.Pg("pg_main")), ("CENTRIFUGO_CONSUMERS_PG_MAIN_POSTGRESQL_PARTITION_POLL_INTERVAL", "300")));

    [Fact]
    public void Env_values_go_through_the_same_validation_as_file_values() =>
        Assert.Equal(
            "in consumer pg_main (postgresql): num_partitions must be between 1 and 100000 (0 means 1), got 100001",
            Cfg.Error(Cfg.Config(Cfg.Pg("pg_main")), ("CENTRIFUGO_CONSUMERS_PG_MAIN_POSTGRESQL_NUM_PARTITIONS", "100001")));

    [Fact]
    public void Malformed_centrifugo_consumers_json_is_reported_without_its_content()
    {
        var message = Cfg.Error(Cfg.Config(), ("CENTRIFUGO_CONSUMERS", $$$"""[{"name":"x","postgresql":{"dsn":"{{{Cfg.PgDsn}}}"}]"""));

        Assert.StartsWith("CENTRIFUGO_CONSUMERS is not valid JSON at position", message);
    }

    [Fact]
    public void Invalid_name_in_centrifugo_consumers_list_is_reported_by_position() =>
        Assert.Equal(
            "CENTRIFUGO_CONSUMERS: " +
            "name #2 is not a valid consumer name (expected a JSON array or space-separated names matching ^[a-zA-Z0-9_]{2,}$)",
            Cfg.Error(Cfg.Config(), ("CENTRIFUGO_CONSUMERS", "ok_name postgres://u:pw@h/db")));

    [Fact]
    public void Api_url_and_key_env_override_the_file()
    {
        var api = Cfg.Load(
            """{"api":{"url":"http://file:8000/api","key":"file-key"}}""",
            ("CENTRIFUGO_API_URL", "https://centrifugo.internal/api"),
            ("CENTRIFUGO_API_KEY", "env-key"),
            ("CENTRIFUGO_API_TIMEOUT", "750ms"),
            ("CENTRIFUGO_API_MAX_BATCH_SIZE", "1")).Api;

        Assert.Equal("https://centrifugo.internal/api", api.Url);
        Assert.Equal("env-key", api.Key);
        Assert.Equal(TimeSpan.FromMilliseconds(750), api.Timeout);
        Assert.Equal(1, api.MaxBatchSize);
    }

    [Fact]
    public void Api_key_env_alone_is_enough() => Assert.Equal("env-key", Cfg.Load("{}", ("CENTRIFUGO_API_KEY", "env-key")).Api.Key);

    [Fact]
    public void Cluster_and_admin_sections_have_kubernetes_friendly_env_overrides()
    {
        var options = Cfg.Load(
            """{"api":{"key":"k"},"cluster":{"hostname":"file-host"},"admin":true}""",
            ("CENTRIFUGO_ACTORS_CLUSTER_HOSTNAME", "pod-0.actors.ns.svc"),
            ("CENTRIFUGO_ACTORS_CLUSTER_PORT", "5000"),
            ("CENTRIFUGO_ACTORS_CLUSTER_SYSTEM_NAME", "prod"),
            ("CENTRIFUGO_ACTORS_CLUSTER_SEED_NODES", "akka.tcp://prod@pod-0.actors:5000 akka.tcp://prod@pod-1.actors:5000"),
            ("CENTRIFUGO_ACTORS_CLUSTER_NUMBER_OF_SHARDS", "64"),
            ("CENTRIFUGO_ACTORS_CLUSTER_HEARTBEAT_INTERVAL", "500ms"),
            ("CENTRIFUGO_ACTORS_CLUSTER_ACCEPTABLE_HEARTBEAT_PAUSE", "1500ms"),
            ("CENTRIFUGO_ACTORS_CLUSTER_DOWNING_STABLE_AFTER", "3s"),
            ("CENTRIFUGO_ACTORS_CLUSTER_REBALANCE_INTERVAL", "1s"),
            ("CENTRIFUGO_ACTORS_CLUSTER_KAFKA_STANDBY_MEMBER", "false"),
            ("CENTRIFUGO_ACTORS_CLUSTER_POSTGRES_LIVENESS", "false"),
            ("CENTRIFUGO_ACTORS_ADMIN_ADDRESS", "0.0.0.0:9110"),
            ("CENTRIFUGO_ACTORS_ADMIN_TOKEN", "token-from-a-secret-123"));

        Assert.Equal("pod-0.actors.ns.svc", options.Cluster.Hostname);
        Assert.Equal(5000, options.Cluster.Port);
        Assert.Equal("prod", options.Cluster.SystemName);
        Assert.Equal(["akka.tcp://prod@pod-0.actors:5000", "akka.tcp://prod@pod-1.actors:5000"], options.Cluster.SeedNodes);
        Assert.Equal(64, options.Cluster.NumberOfShards);
        Assert.Equal(TimeSpan.FromMilliseconds(500), options.Cluster.HeartbeatInterval);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), options.Cluster.AcceptableHeartbeatPause);
        Assert.Equal(TimeSpan.FromSeconds(3), options.Cluster.DowningStableAfter);
        Assert.Equal(TimeSpan.FromSeconds(1), options.Cluster.RebalanceInterval);
        Assert.False(options.Cluster.PostgresLiveness);
        Assert.Equal("0.0.0.0:9110", options.Admin.Address);
        Assert.Equal("token-from-a-secret-123", options.Admin.Token);
    }

    private static string SampleValue(string suffix) => suffix switch
    {
        "OUTBOX_TABLE_NAME" => "env_outbox",
        "DEAD_LETTER_TABLE_NAME" => "env_dead",
        "SASL_MECHANISM" => "scram-sha-256",
        "BROKERS" => "e1:9092 e2:9092",
        "TOPICS" => "e1 e2",
        "DEAD_LETTER_TOPIC" => "env.dlq",
        "PARTITION_QUEUE_MAX_SIZE" => "-1",
        "GROUP_PROTOCOL" => "consumer",
        "SESSION_TIMEOUT" => "9s",
        "HEARTBEAT_INTERVAL" => "1s",
        _ when suffix.EndsWith("ENABLED", StringComparison.Ordinal) || suffix.EndsWith("VERIFY", StringComparison.Ordinal)
            || suffix is "USE_TRY_LOCK" or "FETCH_READ_UNCOMMITTED" or "DERIVE_IDEMPOTENCY_KEY" or "CENTRIFUGO_COMPATIBLE_LOCK" => "true",
        "NUM_PARTITIONS" or "PARTITION_SELECT_LIMIT" or "PARTITION_SELECT_MAX_BYTES" or "PAYLOAD_MAX_BYTES" or "MAX_POLL_RECORDS"
            or "FETCH_MAX_BYTES" or "PARTITION_QUEUE_MAX_BYTES" => "7",
        "PARTITION_POLL_INTERVAL" or "FETCH_MAX_WAIT" or "DIAL_TIMEOUT" => "7s",
        _ => "env-value",
    };
}
