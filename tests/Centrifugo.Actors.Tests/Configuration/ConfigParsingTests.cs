using Centrifugo.Actors.Configuration;

namespace Centrifugo.Actors.Tests.Configuration;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class ConfigParsingTests
{
    [Fact]
    public void Minimal_config_gets_every_default()
    {
        var options = Cfg.Load($$$"""{"api":{"key":"{{{Cfg.ApiKey}}}"}}""");

        Assert.Equal("http://127.0.0.1:8000/api", options.Api.Url);
        Assert.Equal(Cfg.ApiKey, options.Api.Key);
        Assert.Equal(TimeSpan.FromSeconds(5), options.Api.Timeout);
        Assert.Equal(100, options.Api.MaxBatchSize);
        Assert.Empty(options.Consumers);
        Assert.Equal("centrifugo-actors", options.Cluster.SystemName);
        Assert.Equal("127.0.0.1", options.Cluster.Hostname);
        Assert.Equal(4053, options.Cluster.Port);
        Assert.Empty(options.Cluster.SeedNodes);
        Assert.Equal(100, options.Cluster.NumberOfShards);
        Assert.Equal(TimeSpan.FromMilliseconds(500), options.Cluster.HeartbeatInterval);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), options.Cluster.AcceptableHeartbeatPause);
        Assert.Equal(TimeSpan.FromSeconds(3), options.Cluster.DowningStableAfter);
        Assert.Equal(TimeSpan.FromMilliseconds(500), options.Cluster.RebalanceInterval);
        Assert.True(options.Cluster.PostgresLiveness);
        Assert.Equal("127.0.0.1:9110", options.Admin.Address);
    }

    [Fact]
    public void Example_config_from_the_issue_parses_every_section()
    {
        var options = Cfg.Load($$$"""
            { "api": {"url":"http://centrifugo:8000/api/","key":"{{{Cfg.ApiKey}}}","timeout":"2s","max_batch_size":50},
              "consumers": [ {"name":"pg_main","type":"postgresql","postgresql":{"dsn":"{{{Cfg.PgDsn}}}","outbox_table_name":"centrifugo_outbox",
                  "num_partitions":8,"partition_select_limit":100,"partition_poll_interval":"300ms",
                  "partition_notification_channel":"centrifugo_partition_change"}} ],
              "cluster": {"system_name":"prod","hostname":"10.0.0.5","port":4054,"seed_nodes":["akka.tcp://prod@10.0.0.4:4054"],"number_of_shards":300},
              "admin": {"address":"0.0.0.0:9111","token":"0123456789abcdef"} }
            """);

        Assert.Equal("http://centrifugo:8000/api", options.Api.Url);
        Assert.Equal(TimeSpan.FromSeconds(2), options.Api.Timeout);
        Assert.Equal(50, options.Api.MaxBatchSize);
        var consumer = Assert.Single(options.Consumers);
        Assert.Equal("pg_main", consumer.Name);
        Assert.True(consumer.Enabled);
        var pg = Assert.IsType<PostgresConsumer>(consumer).Postgresql;
        Assert.Equal(Cfg.PgDsn, pg.Dsn);
        Assert.Equal("centrifugo_outbox", pg.OutboxTableName);
        Assert.Equal(8, pg.NumPartitions);
        Assert.Equal(100, pg.PartitionSelectLimit);
        Assert.Equal(4 << 20, pg.PartitionSelectMaxBytes);
        Assert.Equal(16 << 20, pg.PayloadMaxBytes);
        Assert.Equal(TimeSpan.FromMilliseconds(300), pg.PartitionPollInterval);
        Assert.Equal("centrifugo_partition_change", pg.PartitionNotificationChannel);
        Assert.Equal("centrifugo_outbox_dead_letter", pg.DeadLetterTableName);
        Assert.Equal("prod", options.Cluster.SystemName);
        Assert.Equal("10.0.0.5", options.Cluster.Hostname);
        Assert.Equal(4054, options.Cluster.Port);
        Assert.Equal(["akka.tcp://prod@10.0.0.4:4054"], options.Cluster.SeedNodes);
        Assert.Equal(300, options.Cluster.NumberOfShards);
        Assert.Equal("0.0.0.0:9111", options.Admin.Address);
    }

    [Fact]
    public void Every_postgresql_option_is_read()
    {
        var pg = Cfg.One<PostgresConsumer>(Cfg.Config(Cfg.Pg(block: $$$"""
            ,"num_partitions":16,"partition_select_limit":500,"partition_poll_interval":"1m30s",
            "partition_notification_channel":"chan","partition_notification_dsn":"host=direct user=u password=notify-pw dbname=app",
            "tls":{"enabled":true,"cert_pem":"{{{Cfg.TlsCert}}}","key_pem":"{{{Cfg.TlsKey}}}","server_ca_pem":"{{{Cfg.TlsCa}}}",
                   "client_ca_pem":"LS0tLS1CRUdJTg==","insecure_skip_verify":true,"server_name":"db.internal"},
            "use_try_lock":true,"dead_letter_table_name":"ops.failed_commands","centrifugo_compatible_lock":true
            """))).Postgresql;

        Assert.Equal(16, pg.NumPartitions);
        Assert.Equal(500, pg.PartitionSelectLimit);
        Assert.Equal(TimeSpan.FromSeconds(90), pg.PartitionPollInterval);
        Assert.Equal("chan", pg.PartitionNotificationChannel);
        Assert.Equal("host=direct user=u password=notify-pw dbname=app", pg.PartitionNotificationDsn);
        Assert.Equal(
            new TlsOptions
            {
                Enabled = true, CertPem = Cfg.TlsCert, KeyPem = Cfg.TlsKey, ServerCaPem = Cfg.TlsCa,
                ClientCaPem = "LS0tLS1CRUdJTg==", InsecureSkipVerify = true, ServerName = "db.internal",
            },
            pg.Tls);
        Assert.True(pg.UseTryLock);
        Assert.Equal("ops.failed_commands", pg.DeadLetterTableName);
        Assert.True(pg.CentrifugoCompatibleLock);
    }

    [Fact]
    public void Postgresql_zero_values_take_centrifugo_defaults()
    {
        var pg = Cfg.One<PostgresConsumer>(
            Cfg.Config(Cfg.Pg(block: ""","num_partitions":0,"partition_select_limit":0,"partition_poll_interval":"0s" """))).Postgresql;

        Assert.Equal(1, pg.NumPartitions);
        Assert.Equal(100, pg.PartitionSelectLimit);
        Assert.Equal(TimeSpan.FromMilliseconds(300), pg.PartitionPollInterval);
        Assert.Equal("", pg.PartitionNotificationChannel);
        Assert.Equal("", pg.PartitionNotificationDsn);
        Assert.Equal(new TlsOptions(), pg.Tls);
        Assert.False(pg.UseTryLock);
        Assert.False(pg.CentrifugoCompatibleLock);
    }

    [Fact]
    public void Durations_accept_integer_nanoseconds()
    {
        var pg = Cfg.One<PostgresConsumer>(Cfg.Config(Cfg.Pg(block: ""","partition_poll_interval":1500000000"""))).Postgresql;

        Assert.Equal(TimeSpan.FromMilliseconds(1500), pg.PartitionPollInterval);
    }

    [Fact]
    public void Null_values_count_as_absent_like_go()
    {
        var pg = Cfg.One<PostgresConsumer>(Cfg.Config(Cfg.Pg(block: ""","num_partitions":null,"tls":null"""))).Postgresql;

        Assert.Equal(1, pg.NumPartitions);
        Assert.False(pg.Tls.Enabled);
    }

    [Theory]
    [InlineData("centrifugo_outbox", "centrifugo_outbox_dead_letter")]
    [InlineData("app.outbox", "app.outbox_dead_letter")]
    public void Dead_letter_table_defaults_to_outbox_name_with_suffix_keeping_the_schema(string outbox, string expected)
    {
        var json = Cfg.Config(
            $$$"""{"name":"pg_main","type":"postgresql","postgresql":{"dsn":"{{{Cfg.PgDsn}}}","outbox_table_name":"{{{outbox}}}"}}""");

        Assert.Equal(expected, Cfg.One<PostgresConsumer>(json).Postgresql.DeadLetterTableName);
    }

    [Theory]
    [InlineData("", true)]
    [InlineData(""","enabled":true""", true)]
    [InlineData(""","enabled":false""", false)]
    [InlineData(""","disabled":true""", false)]
    [InlineData(""","disabled":false""", true)]
    [InlineData(""","enabled":true,"disabled":true""", true)]
    [InlineData(""","enabled":false,"disabled":false""", false)]
    public void Enabled_wins_over_disabled_and_missing_both_means_enabled(string flags, bool expected) =>
        Assert.Equal(expected, Cfg.One(Cfg.Config(Cfg.Pg(extra: flags))).Enabled);

    [Fact]
    public void Every_kafka_v6_option_is_read()
    {
        var kafka = Cfg.One<KafkaConsumer>(Cfg.Config($$$"""
            {"name":"kf","type":"kafka","enabled":true,"kafka":{
              "brokers":["b1:9092","b2:9092"],"topics":["t1","t2"],"consumer_group":"grp","max_poll_records":10,
              "fetch_max_bytes":1048576,"fetch_max_wait":"1s","fetch_read_uncommitted":true,"partition_queue_max_size":50,
              "dial_timeout":"10s",
              "tls":{"enabled":true,"cert_pem":"{{{Cfg.TlsCert}}}","key_pem":"{{{Cfg.TlsKey}}}","server_ca_pem":"{{{Cfg.TlsCa}}}","client_ca_pem":"cca",
                     "insecure_skip_verify":true,"server_name":"kafka.internal"},
              "sasl_mechanism":"scram-sha-512","sasl_user":"user","sasl_password":"{{{Cfg.SaslPassword}}}",
              "instance_id":"pod-0","method_header":"x-method",
              "publication_data_mode":{"enabled":true,"channels_header":"ch","idempotency_key_header":"ik","delta_header":"d",
                     "version_header":"v","version_epoch_header":"ve","tags_header_prefix":"tag-"},
              "dead_letter_topic":"commands.dlq"}}
            """)).Kafka;

        Assert.Equal(["b1:9092", "b2:9092"], kafka.Brokers);
        Assert.Equal(["t1", "t2"], kafka.Topics);
        Assert.Equal("grp", kafka.ConsumerGroup);
        Assert.Equal(10, kafka.MaxPollRecords);
        Assert.Equal(1048576, kafka.FetchMaxBytes);
        Assert.Equal(TimeSpan.FromSeconds(1), kafka.FetchMaxWait);
        Assert.True(kafka.FetchReadUncommitted);
        Assert.Equal(50, kafka.PartitionQueueMaxSize);
        Assert.Equal(TimeSpan.FromSeconds(10), kafka.DialTimeout);
        Assert.Equal(
            new TlsOptions
            {
                Enabled = true, CertPem = Cfg.TlsCert, KeyPem = Cfg.TlsKey, ServerCaPem = Cfg.TlsCa, ClientCaPem = "cca",
                InsecureSkipVerify = true, ServerName = "kafka.internal",
            },
            kafka.Tls);
        Assert.Equal("scram-sha-512", kafka.SaslMechanism);
        Assert.Equal("user", kafka.SaslUser);
        Assert.Equal(Cfg.SaslPassword, kafka.SaslPassword);
        Assert.Equal("pod-0", kafka.InstanceId);
        Assert.Equal("x-method", kafka.MethodHeader);
        Assert.Equal(
            new PublicationDataModeOptions
            {
                Enabled = true, ChannelsHeader = "ch", IdempotencyKeyHeader = "ik", DeltaHeader = "d", VersionHeader = "v",
                VersionEpochHeader = "ve", TagsHeaderPrefix = "tag-",
            },
            kafka.PublicationDataMode);
        Assert.Equal("commands.dlq", kafka.DeadLetterTopic);
    }

    [Fact]
    public void Kafka_defaults_and_zero_rules_follow_centrifugo()
    {
        var kafka = Cfg.One<KafkaConsumer>(Cfg.Config(Cfg.Kafka(block: """
            ,"max_poll_records":0,"fetch_max_wait":"0s","partition_queue_max_size":0,"dial_timeout":"-1s",
            "method_header":"","publication_data_mode":{"enabled":true,"channels_header":""}
            """))).Kafka;

        Assert.Equal(100, kafka.MaxPollRecords);
        Assert.Equal(0, kafka.FetchMaxBytes);
        Assert.Equal(TimeSpan.FromMilliseconds(500), kafka.FetchMaxWait);
        Assert.False(kafka.FetchReadUncommitted);
        Assert.Equal(10_000, kafka.PartitionQueueMaxSize);
        Assert.Equal(4 * 1024 * 1024, kafka.PartitionQueueMaxBytes);
        Assert.Equal(TimeSpan.FromSeconds(3), kafka.DialTimeout);
        Assert.Equal("centrifugo-method", kafka.MethodHeader);
        Assert.Equal(new PublicationDataModeOptions { Enabled = true }, kafka.PublicationDataMode);
        Assert.Equal("", kafka.SaslMechanism);
        Assert.Equal("", kafka.DeadLetterTopic);
        Assert.Equal(new TlsOptions(), kafka.Tls);
    }

    [Fact]
    public void Kafka_partition_queue_max_size_minus_one_means_pause_on_every_poll() =>
        Assert.Equal(0,
            Cfg.One<KafkaConsumer>(Cfg.Config(Cfg.Kafka(block: ""","partition_queue_max_size":-1"""))).Kafka.PartitionQueueMaxSize);

    [Theory]
    [InlineData("plain")]
    [InlineData("scram-sha-256")]
    [InlineData("scram-sha-512")]
    public void Kafka_accepts_supported_sasl_mechanisms(string mechanism)
    {
        var json = Cfg.Config(
            Cfg.Kafka(block: $$$""","sasl_mechanism":"{{{mechanism}}}","sasl_user":"u","sasl_password":"{{{Cfg.SaslPassword}}}" """));

        Assert.Equal(mechanism, Cfg.One<KafkaConsumer>(json).Kafka.SaslMechanism);
    }

    [Fact]
    public void Kafka_v52_flat_tls_keys_map_onto_the_tls_object()
    {
        var kafka = Cfg.One<KafkaConsumer>(Cfg.Config(Cfg.Kafka(block: $$$"""
            ,"tls":true,"tls_cert":"{{{Cfg.TlsCert}}}","tls_key_pem":"{{{Cfg.TlsKey}}}","tls_root_ca":"{{{Cfg.TlsCa}}}",
            "tls_client_ca_pem":"CLIENT-CA-PEM","tls_insecure_skip_verify":true,"server_name":"broker.internal",
            "sasl_mechanism":"plain","sasl_user":"u","sasl_password":"{{{Cfg.SaslPassword}}}"
            """))).Kafka;

        Assert.Equal(
            new TlsOptions
            {
                Enabled = true, CertPem = Cfg.TlsCert, KeyPem = Cfg.TlsKey, ServerCaPem = Cfg.TlsCa,
                ClientCaPem = "CLIENT-CA-PEM", InsecureSkipVerify = true, ServerName = "broker.internal",
            },
            kafka.Tls);
    }

    [Theory]
    [InlineData("tls_cert_pem", "cert_pem")]
    [InlineData("tls_key", "key_pem")]
    [InlineData("tls_root_ca_pem", "server_ca_pem")]
    [InlineData("tls_client_ca", "client_ca_pem")]
    [InlineData("tls_server_name", "server_name")]
    public void Kafka_v52_flat_tls_key_variants_are_all_accepted(string flatKey, string tlsField)
    {
        var tls = Cfg.One<KafkaConsumer>(Cfg.Config(Cfg.Kafka(block: $$$""","tls":false,"{{{flatKey}}}":"value" """))).Kafka.Tls;

        Assert.False(tls.Enabled);
        var actual = tlsField switch
        {
            "cert_pem" => tls.CertPem,
            "key_pem" => tls.KeyPem,
            "server_ca_pem" => tls.ServerCaPem,
            "client_ca_pem" => tls.ClientCaPem,
            _ => tls.ServerName,
        };
        Assert.Equal("value", actual);
    }

    [Fact]
    public void Kafka_v52_tls_bool_alone_enables_tls() =>
        Assert.True(Cfg.One<KafkaConsumer>(Cfg.Config(Cfg.Kafka(block: ""","tls":true"""))).Kafka.Tls.Enabled);

    [Fact]
    public void Kafka_v54_partition_buffer_size_is_accepted_and_has_no_effect() =>
        Assert.Equal(10_000,
            Cfg.One<KafkaConsumer>(Cfg.Config(Cfg.Kafka(block: ""","partition_buffer_size":8"""))).Kafka.PartitionQueueMaxSize);

    [Fact]
    public void Disabled_consumers_of_unsupported_centrifugo_types_are_ignored()
    {
        var options = Cfg.Load(Cfg.Config(
            Cfg.Pg(),
            """{"name":"nats","type":"nats_jetstream","enabled":false,"nats_jetstream":{"url":"nats://x","anything":1}}""",
            """{"name":"sqs","type":"aws_sqs","disabled":true}"""));

        Assert.Equal(["pg_main"], options.Consumers.Select(c => c.Name));
    }

    [Fact]
    public void Disabled_consumers_skip_required_field_validation_but_are_kept()
    {
        var consumer = Cfg.One<PostgresConsumer>(Cfg.Config("""{"name":"later","type":"postgresql","enabled":false}"""));

        Assert.False(consumer.Enabled);
        Assert.Equal("", consumer.Postgresql.Dsn);
    }

    [Fact]
    public void An_unchanged_centrifugo_v6_config_is_accepted_with_its_own_sections_ignored()
    {
        var consumer = Cfg.Pg(extra: ""","enabled":true""");
        var options = Cfg.Load($$$"""
            {
              "http_server": {"port": 8000}, "log": {"level": "info"}, "engine": {"type": "redis", "redis": {"address": "redis://r:6379"}},
              "broker": {}, "presence_manager": {}, "client": {"token": {"hmac_secret_key": "x"}, "allowed_origins": ["*"]},
              "channel": {"namespaces": []}, "rpc": {}, "proxies": [], "grpc_api": {"enabled": false},
              "http_api": {"key": "{{{Cfg.ApiKey}}}", "handler_prefix": "/api"}, "uni_websocket": {}, "uni_sse": {}, "uni_http_stream": {},
              "uni_grpc": {}, "websocket": {}, "sse": {}, "http_stream": {}, "emulation": {}, "prometheus": {"enabled": true},
              "health": {"enabled": true}, "swagger": {}, "debug": {}, "opentelemetry": {}, "graphite": {}, "usage_stats": {"disabled": true},
              "node": {}, "shutdown": {}, "pid_file": "", "enable_unreleased_features": false, "map_broker": {}, "dev": {}, "init": {},
              "admin": {"enabled": true, "password": "admin-pw", "secret": "admin-secret", "insecure": false, "handler_prefix": "/admin",
                        "external": true, "web_path": "", "web_proxy_address": ""},
              "consumers": [{{{consumer}}}]
            }
            """);

        Assert.Equal(Cfg.ApiKey, options.Api.Key);
        Assert.Equal("127.0.0.1:9110", options.Admin.Address);
        Assert.Single(options.Consumers);
    }

    [Fact]
    public void An_unchanged_centrifugo_v5_config_is_accepted_with_its_flat_keys_ignored()
    {
        var consumer = Cfg.Pg(extra: ""","disabled":false""");
        var options = Cfg.Load($$$"""
            {
              "token_hmac_secret_key": "secret", "api_key": "{{{Cfg.ApiKey}}}", "admin": true, "admin_password": "p", "admin_secret": "s",
              "port": 8000, "address": "0.0.0.0", "log_level": "debug", "allowed_origins": ["*"], "engine": "redis",
              "redis_address": "redis://r:6379", "namespaces": [], "history_size": 10, "presence": true, "prometheus": true,
              "health": true, "tls": false, "name": "node1", "client_channel_limit": 128,
              "consumers": [{{{consumer}}}]
            }
            """);

        Assert.Equal(Cfg.ApiKey, options.Api.Key);
        Assert.Equal("127.0.0.1:9110", options.Admin.Address);
        Assert.True(Assert.Single(options.Consumers).Enabled);
    }

    [Fact]
    public void Our_admin_address_can_sit_next_to_centrifugo_admin_keys()
    {
        var options = Cfg.Load("""{"api":{"key":"k"},"admin":{"enabled":true,"password":"pw","address":"127.0.0.1:9200","oidc":{}}}""");

        Assert.Equal("127.0.0.1:9200", options.Admin.Address);
    }

    [Fact]
    public void Admin_address_may_be_empty_to_disable_the_endpoint() =>
        Assert.Equal("", Cfg.Load("""{"api":{"key":"k"},"admin":{"address":""}}""").Admin.Address);

    [Theory]
    [InlineData("""{"api":{"key":"own"},"http_api":{"key":"v6"},"api_key":"v5"}""", "own")]
    [InlineData("""{"http_api":{"key":"v6"},"api_key":"v5"}""", "v6")]
    [InlineData("""{"api_key":"v5"}""", "v5")]
    [InlineData("""{"api":{"key":""},"api_key":"v5"}""", "v5")]
    public void Api_key_falls_back_to_centrifugo_keys_of_the_same_file(string json, string expected) =>
        Assert.Equal(expected, Cfg.Load(json).Api.Key);

    [Fact]
    public void Api_key_falls_back_to_centrifugo_v6_env_before_the_v5_file_key() =>
        Assert.Equal("from-env", Cfg.Load("""{"api_key":"v5"}""", ("CENTRIFUGO_HTTP_API_KEY", "from-env")).Api.Key);

    [Fact]
    public void Duplicate_json_keys_resolve_like_go_last_one_wins() =>
        Assert.Equal(4,
            Cfg.One<PostgresConsumer>(Cfg.Config(Cfg.Pg(block: ""","num_partitions":2,"num_partitions":4"""))).Postgresql.NumPartitions);

    [Fact]
    public void Load_reads_a_file()
    {
        var path = Path.Combine(Path.GetTempPath(), $"centrifugo-actors-config-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, Cfg.Config(Cfg.Pg()));
        try
        {
            var options = ConfigLoader.Load(path, Cfg.Env());

            Assert.Equal("pg_main", Assert.Single(options.Consumers).Name);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
