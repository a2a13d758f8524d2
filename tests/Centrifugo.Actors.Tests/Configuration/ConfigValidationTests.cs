using Centrifugo.Actors.Configuration;

namespace Centrifugo.Actors.Tests.Configuration;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class ConfigValidationTests
{
    private const string Pg = "in consumer pg_main (postgresql): ";
    private const string Kf = "in consumer kf_main (kafka): ";

    public static TheoryData<string, string> PostgresqlBlockErrors() => new()
    {
        { ""","outbox_tabel_name":"x" """, Pg + "unknown key \"outbox_tabel_name\" in postgresql (did you mean \"outbox_table_name\"?)" },
        { ""","zzz":"x" """, Pg + "unknown key \"zzz\" in postgresql" },
        { ""","tls":{"enabled":true,"key_pm":"x"}""", Pg + "unknown key \"tls.key_pm\" in postgresql (did you mean \"tls.key_pem\"?)" },
        { ""","num_partitions":"8" """, Pg + "num_partitions: expected an integer, got a string" },
        { ""","num_partitions":1.5""", Pg + "num_partitions: expected an integer, got a number" },
        { ""","num_partitions":3000000000""", Pg + "num_partitions: 3000000000 is out of range" },
        { ""","num_partitions":100001""", Pg + "num_partitions must be between 1 and 100000 (0 means 1), got 100001" },
        { ""","num_partitions":-1""", Pg + "num_partitions must be between 1 and 100000 (0 means 1), got -1" },
        { ""","partition_select_limit":100001""", Pg + "partition_select_limit must be between 1 and 100000 (0 means 100), got 100001" },
        { ""","partition_select_max_bytes":-1""",
            Pg + "partition_select_max_bytes must be between 1 and 1073741824 bytes (0 means 4194304), got -1" },
        { ""","payload_max_bytes":1073741825""",
            Pg + "payload_max_bytes must be between 1 and 1073741824 bytes (0 means 16777216), got 1073741825" },
        { ""","partition_poll_interval":true""",
            Pg + "partition_poll_interval: expected a duration (a Go duration string such as \"300ms\" or integer nanoseconds), " +
            "got a boolean" },
        { ""","partition_poll_interval":"300" """,
            Pg + "partition_poll_interval is missing a unit (use ns, us, µs, ms, s, m or h, e.g. \"300ms\")" },
        { ""","partition_poll_interval":"-1s" """, Pg + "partition_poll_interval must not be negative, got -1s" },
        { ""","use_try_lock":"yes" """, Pg + "use_try_lock: expected a boolean, got a string" },
        { ""","tls":true""", Pg + "tls: expected an object, got a boolean" },
        { ""","partition_notification_channel":"{{new string('c', 64)}}" """,
            Pg + "partition_notification_channel must be at most 63 characters (a PostgreSQL identifier)" },
        { ""","dead_letter_table_name":"a.b.c" """,
            Pg + "dead_letter_table_name \"a.b.c\" is not a valid table name: use name or schema.name, each part matching " +
            "^[A-Za-z_][A-Za-z0-9_]*$" },
        { ""","dead_letter_table_name":"centrifugo_outbox" """, Pg + "dead_letter_table_name must differ from outbox_table_name" },
    };

    [Theory]
    [MemberData(nameof(PostgresqlBlockErrors))]
    public void Postgresql_block_problems_name_consumer_and_field(string block, string expected)
    {
        block = block.Replace("{{new string('c', 64)}}", new string('c', 64), StringComparison.Ordinal);

        Assert.Equal(expected, Cfg.Error(Cfg.Config(Cfg.Pg(block: block))));
    }

    [Fact]
    public void Missing_outbox_table_name_uses_centrifugo_message_style() =>
        Assert.Equal(
            "in consumer pg_main (postgresql): outbox_table_name is required",
            Cfg.Error(Cfg.Config($$$"""{"name":"pg_main","type":"postgresql","postgresql":{"dsn":"{{{Cfg.PgDsn}}}"}}""")));

    [Fact]
    public void Missing_dsn_names_the_env_variable_too() =>
        Assert.Equal(
            "in consumer pg_main (postgresql): " +
            "dsn is required (postgresql.dsn in the file or env CENTRIFUGO_CONSUMERS_PG_MAIN_POSTGRESQL_DSN)",
            Cfg.Error(Cfg.Config("""{"name":"pg_main","type":"postgresql","postgresql":{"outbox_table_name":"t"}}""")));

    [Theory]
    [InlineData("1outbox")]
    [InlineData("out-box")]
    [InlineData("a.b.c")]
    [InlineData("\"quoted\"")]
    [InlineData("schema.")]
    public void Outbox_table_name_must_be_an_optionally_schema_qualified_identifier(string table)
    {
        var json = Cfg.Config($$$"""{"name":"pg_main","type":"postgresql","postgresql":""" +
            $$$"""{"dsn":"{{{Cfg.PgDsn}}}","outbox_table_name":{{{System.Text.Json.JsonSerializer.Serialize(table)}}}}}""");

        Assert.StartsWith($"{Pg}outbox_table_name \"{table}\" is not a valid table name", Cfg.Error(json));
    }

    [Fact]
    public void Table_name_parts_are_limited_to_63_characters()
    {
        var table = "app." + new string('t', 64);
        var json = Cfg.Config(
            $$$"""{"name":"pg_main","type":"postgresql","postgresql":{"dsn":"{{{Cfg.PgDsn}}}","outbox_table_name":"{{{table}}}"}}""");

        Assert.Equal($"{Pg}outbox_table_name: \"{new string('t', 64)}\" is longer than 63 characters (PostgreSQL's identifier limit)",
            Cfg.Error(json));
    }

    [Fact]
    public void Too_long_default_dead_letter_name_asks_for_an_explicit_one()
    {
        var table = new string('t', 60);
        var json = Cfg.Config(
            $$$"""{"name":"pg_main","type":"postgresql","postgresql":{"dsn":"{{{Cfg.PgDsn}}}","outbox_table_name":"{{{table}}}"}}""");

        Assert.Equal($"{Pg}the default dead_letter_table_name \"{table}_dead_letter\" is longer than 63 characters; " +
            "set dead_letter_table_name explicitly", Cfg.Error(json));
    }

    public static TheoryData<string, string> KafkaBlockErrors() => new()
    {
        { ""","brokers":"b:9092" """, Kf + "brokers: expected an array of strings, got a string" },
        { ""","brokers":[1]""", Kf + "brokers[0]: expected a string, got a number" },
        { ""","brokers":[]""",
            Kf + "brokers is required (kafka.brokers in the file or env CENTRIFUGO_CONSUMERS_KF_MAIN_KAFKA_BROKERS, space-separated)" },
        { ""","brokers":[" "]""", Kf + "brokers[0] is empty" },
        { ""","topics":[]""", Kf + "topics is required" },
        { ""","topics":["bad topic"]""",
            Kf + "topics: \"bad topic\" is not a valid Kafka topic name (1-249 characters of a-z, A-Z, 0-9, '.', '_', '-')" },
        { ""","consumer_group":"" """, Kf + "consumer_group is required" },
        { ""","sasl_mechanism":"aws-msk-iam" """,
            Kf + "sasl_mechanism \"aws-msk-iam\" is not supported by Centrifugo.Actors (librdkafka has no aws-msk-iam)" },
        { ""","group_protocol":"eager" """, Kf + "group_protocol must be classic or consumer, got \"eager\"" },
        { ""","session_timeout":"1s","heartbeat_interval":"500ms" """,
            Kf + "heartbeat_interval (500ms) must be at most a third of session_timeout (1s)" },
        { ""","assume_role_arn":"arn:aws:iam::1:role/x" """,
            Kf + "assume_role_arn is not supported by Centrifugo.Actors (librdkafka has no aws-msk-iam)" },
        { ""","sasl_mechanism":"gssapi" """, Kf + "sasl_mechanism \"gssapi\" is unknown (use plain, scram-sha-256 or scram-sha-512)" },
        { ""","sasl_mechanism":"plain" """, Kf + "sasl_user is required when sasl_mechanism is \"plain\"" },
        { ""","sasl_password":12345""", Kf + "sasl_password: expected a string, got a number" },
        { ""","partition_queue_max_size":-2""",
            Kf + "partition_queue_max_size must be -1 (fetch only while nothing is queued), 0 (default) or positive, got -2" },
        { ""","max_poll_records":-5""", Kf + "max_poll_records must not be negative (0 means 100), got -5" },
        { ""","fetch_max_bytes":-1""", Kf + "fetch_max_bytes must not be negative (0 means the client default), got -1" },
        { ""","fetch_max_wait":"-5ms" """, Kf + "fetch_max_wait must not be negative, got -5ms" },
        { ""","dead_letter_topic":"commands" """, Kf + "dead_letter_topic \"commands\" must not be one of the consumed topics" },
        { ""","publication_data_mode":{"enable":true}""",
            Kf + "unknown key \"publication_data_mode.enable\" in kafka (did you mean \"publication_data_mode.enabled\"?)" },
        { ""","publication_data_mode":[]""", Kf + "publication_data_mode: expected an object, got an array" },
        { ""","tls":"yes" """, Kf + "tls: expected a boolean (v5.2) or an object (v6), got a string" },
        { ""","tls":{"enabled":true},"tls_cert":"/c.pem" """,
            Kf + "tls_cert is a v5.2 flat TLS key and cannot be combined with the v6 \"tls\" object; " +
            "move it into \"tls\" as \"cert_pem\"" },
        { ""","tls":true,"tls_cert":"/c.pem","tls_cert_pem":"PEM" """,
            Kf + "tls_cert and tls_cert_pem are both set; set only one of them" },
        { ""","tls_key":"/k.pem","tls_key_pem":"PEM" """, Kf + "tls_key and tls_key_pem are both set; set only one of them" },
        { ""","tls_root_ca":"/ca","tls_root_ca_pem":"PEM" """, Kf + "tls_root_ca and tls_root_ca_pem are both set; set only one of them" },
        { ""","tls_client_ca":"/ca","tls_client_ca_pem":"PEM" """,
            Kf + "tls_client_ca and tls_client_ca_pem are both set; set only one of them" },
        { ""","tls_insecure_skip_verify":"true" """, Kf + "tls_insecure_skip_verify: expected a boolean, got a string" },
    };

    [Theory]
    [MemberData(nameof(KafkaBlockErrors))]
    public void Kafka_block_problems_name_consumer_and_field(string block, string expected) =>
        Assert.Equal(expected, Cfg.Error(Cfg.Config(Cfg.Kafka(block: block))));

    public static TheoryData<string, string> ConsumerErrors() => new()
    {
        { """{"name":"pg_main","type":"postgresql","enabeld":true}""", Pg + "unknown key \"enabeld\" (did you mean \"enabled\"?)" },
        { """{"name":"pg_main","type":"postgresql","enabled":"true"}""", Pg + "enabled: expected a boolean, got a string" },
        { """{"name":"pg_main","type":"postgresql","postgresql":"dsn"}""", Pg + "postgresql: expected an object, got a string" },
        { """{"name":"a","type":"postgresql"}""", "in consumer a (postgresql): name \"a\" is invalid: it must match ^[a-zA-Z0-9_]{2,}$" },
        { """{"name":"my-pg","type":"postgresql"}""",
            "in consumer my-pg (postgresql): name \"my-pg\" is invalid: it must match ^[a-zA-Z0-9_]{2,}$" },
        { """{"type":"postgresql"}""", "in consumers[0]: name is required" },
        { """{"name":5}""", "in consumers[0]: name: expected a string, got a number" },
        { """{"name":"pg_main"}""", "in consumer pg_main: type is required (postgresql or kafka; env CENTRIFUGO_CONSUMERS_PG_MAIN_TYPE)" },
        { """{"name":"pg_main","type":"postgres","enabled":false}""",
            "in consumer pg_main (postgres): unknown type \"postgres\" (did you mean \"postgresql\"?) " +
            "(Centrifugo types: postgresql, kafka, nats_jetstream, redis_stream, google_pub_sub, aws_sqs, azure_service_bus)" },
        { """{"name":"nats","type":"nats_jetstream"}""",
            "in consumer nats (nats_jetstream): type \"nats_jetstream\" is a Centrifugo consumer type " +
            "that Centrifugo.Actors does not run (only postgresql and kafka); disable this consumer (\"enabled\": false) or remove it" },
        { """{"name":"sb","type":"azure_service_bus","enabled":true}""",
            "in consumer sb (azure_service_bus): type \"azure_service_bus\" is a Centrifugo consumer type " +
            "that Centrifugo.Actors does not run (only postgresql and kafka); disable this consumer (\"enabled\": false) or remove it" },
        { "42", "consumers[0]: expected an object, got a number" },
    };

    [Theory]
    [MemberData(nameof(ConsumerErrors))]
    public void Consumer_entry_problems_are_reported_with_their_position_or_name(string consumer, string expected) =>
        Assert.Equal(expected, Cfg.Error(Cfg.Config(consumer)));

    [Fact]
    public void Duplicate_names_are_rejected() =>
        Assert.Equal(
            "duplicate consumer name \"pg_main\" (consumers[0] and consumers[2]); names must be unique",
            Cfg.Error(Cfg.Config(Cfg.Pg(), Cfg.Kafka(), Cfg.Pg(extra: ""","enabled":false"""))));

    private static string KafkaEntry(string name, string group, string topics, bool enabled = true) =>
        $$$"""{"name":"{{{name}}}","type":"kafka","enabled":{{{(enabled ? "true" : "false")}}},"kafka":""" +
        $$$"""{"brokers":["127.0.0.1:9092"],"topics":{{{topics}}},"consumer_group":"{{{group}}}"}}""";

    [Fact]
    public void Two_kafka_consumers_on_one_group_and_topic_are_rejected_naming_both() =>
        Assert.Equal(
            "consumers kf_a and kf_b both read topic \"commands\" in consumer_group \"cg\": every record would be delivered " +
            "by both and their offset commits would overwrite each other; merge them into one consumer, or give each its own " +
            "consumer_group (also when they point at different Kafka clusters)",
            Cfg.Error(
                Cfg.Config(KafkaEntry("kf_a", "cg", """["commands"]"""), Cfg.Pg(), KafkaEntry("kf_b", "cg", """["other","commands"]"""))));

    [Fact]
    public void Kafka_consumers_sharing_a_group_on_distinct_topics_or_disabled_are_accepted()
    {
        Assert.Equal(2,
            Cfg.Load(Cfg.Config(KafkaEntry("kf_a", "cg", """["commands"]"""), KafkaEntry("kf_b", "cg", """["other"]"""))).Consumers.Count);
        Assert.Equal(2,
            Cfg.Load(Cfg.Config(KafkaEntry("kf_a", "cg", """["commands"]"""), KafkaEntry("kf_b", "cg2", """["commands"]""")))
                .Consumers.Count);
        Assert.Equal(2,
            Cfg.Load(Cfg.Config(KafkaEntry("kf_a", "cg", """["commands"]"""), KafkaEntry("kf_b", "cg", """["commands"]""", enabled: false)))
                .Consumers.Count);
    }

    [Fact]
    public void Disabled_consumer_is_still_checked_for_unknown_keys() =>
        Assert.Equal(
            "in consumer pg_main (postgresql): unknown key \"dns\" in postgresql (did you mean \"dsn\"?)",
            Cfg.Error(Cfg.Config("""{"name":"pg_main","type":"postgresql","enabled":false,"postgresql":{"dns":"x"}}""")));

    public static TheoryData<string, string> SectionErrors() => new()
    {
        { """{"api":{"key":"k"},"consumer":[]}""",
            "unknown top-level key \"consumer\" (did you mean \"consumers\"?): it is neither a Centrifugo.Actors section " +
            "(api, consumers, cluster, admin) nor a Centrifugo key" },
        { """{"api":{"key":"k"},"zzz_unknown_section":1}""",
            "unknown top-level key \"zzz_unknown_section\": it is neither a Centrifugo.Actors section " +
            "(api, consumers, cluster, admin) nor a Centrifugo key" },
        { """{"api":{"key":"k"},"consumers":{}}""", "consumers: expected an array, got an object" },
        { """{"api":"http://x"}""", "api: expected an object, got a string" },
        { """{"api":{"key":"k","kye":"x"}}""", "in api: unknown key \"kye\" (did you mean \"key\"?)" },
        { """{"api":{"key":"k","url":"ftp://x/api"}}""",
            "in api: url is not an absolute http:// or https:// URL without query, e.g. http://127.0.0.1:8000/api" },
        { """{"api":{"key":"k","timeout":"0s"}}""", "in api: timeout must be positive, got 0s" },
        { """{"api":{"key":"k","timeout":"-1s"}}""", "in api: timeout must be positive, got -1s" },
        { """{"api":{"key":"k","max_batch_size":0}}""", "in api: max_batch_size must be between 1 and 1000, got 0" },
        { """{"api":{"key":"k","max_batch_size":1001}}""", "in api: max_batch_size must be between 1 and 1000, got 1001" },
        { """{"api":{"key":"k","max_batch_size":"10"}}""", "in api: max_batch_size: expected an integer, got a string" },
        { """{"api":{"key":"k"},"cluster":{"port":65536}}""", "in cluster: port must be between 0 and 65535, got 65536" },
        { """{"api":{"key":"k"},"cluster":{"port":-1}}""", "in cluster: port must be between 0 and 65535, got -1" },
        { """{"api":{"key":"k"},"cluster":{"hostname":""}}""", "in cluster: hostname must not be empty" },
        { """{"api":{"key":"k"},"cluster":{"system_name":"bad name"}}""",
            "in cluster: system_name \"bad name\" is invalid: it must match ^[a-zA-Z0-9][a-zA-Z0-9_-]*$ (Akka actor system name)" },
        { """{"api":{"key":"k"},"cluster":{"seed_nodes":["10.0.0.1:4053"]}}""",
            "in cluster: seed_nodes: \"10.0.0.1:4053\" is not an Akka address like akka.tcp://centrifugo-actors@host:4053" },
        { """{"api":{"key":"k"},"cluster":{"seed_nodes":["akka.tcp://other@h:4053"]}}""",
            "in cluster: seed_nodes: \"akka.tcp://other@h:4053\" names actor system \"other\" but system_name is \"centrifugo-actors\"; " +
            "all nodes must use the same name" },
        { """{"api":{"key":"k"},"cluster":{"seeds":[]}}""", "in cluster: unknown key \"seeds\"" },
        { """{"api":{"key":"k"},"cluster":{"downing_stable_after":"500ms"}}""",
            "in cluster: downing_stable_after must be between 1s and 5m0s, got 500ms" },
        { """{"api":{"key":"k"},"cluster":{"heartbeat_interval":"2s","acceptable_heartbeat_pause":"1s"}}""",
            "in cluster: acceptable_heartbeat_pause (1s) must be at least heartbeat_interval (2s)" },
        { """{"api":{"key":"k"},"cluster":{"rebalance_interval":"100ms"}}""",
            "in cluster: rebalance_interval must be between 500ms and 10m0s, got 100ms" },
        { """{"api":{"key":"k"},"cluster":{"kafka_standby_member":"no"}}""",
            "in cluster: kafka_standby_member: expected a boolean, got a string" },
        { """{"api":{"key":"k"},"admin":{"adress":"x"}}""", "in admin: unknown key \"adress\" (did you mean \"address\"?)" },
        { """{"api":{"key":"k"},"admin":{"address":"nope"}}""",
            "in admin: address \"nope\" must be host:port (e.g. 127.0.0.1:9110 or 0.0.0.0:9110), or \"\" to disable the admin endpoint" },
        { """{"api":{"key":"k"},"admin":{"address":"host:99999"}}""",
            "in admin: address \"host:99999\" must be host:port (e.g. 127.0.0.1:9110 or 0.0.0.0:9110), " +
            "or \"\" to disable the admin endpoint" },
        { """{"api":{"key":"k"},"admin":{"address":":9110"}}""",
            "in admin: address \":9110\" must be host:port (e.g. 127.0.0.1:9110 or 0.0.0.0:9110), or \"\" to disable the admin endpoint" },
    };

    [Theory]
    [MemberData(nameof(SectionErrors))]
    public void Section_problems_name_the_section_and_field(string json, string expected) =>
        Assert.Equal(expected, Cfg.Error(json));

    [Theory]
    [InlineData("[::1]:9110")]
    [InlineData("localhost:0")]
    public void Admin_address_accepts_host_port_forms(string address) =>
        Assert.Equal(address, Cfg.Load($$$"""{"api":{"key":"k"},"admin":{"address":"{{{address}}}"}}""").Admin.Address);

    [Fact]
    public void Missing_api_key_is_actionable()
    {
        var message = Cfg.Error("""{"api":{"url":"http://127.0.0.1:8000/api"}}""");

        Assert.StartsWith("in api: key is required: Centrifugo answers 401", message);
        Assert.Contains("CENTRIFUGO_API_KEY", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Malformed_json_reports_line_and_position()
    {
        var message = Cfg.Error("{\n  \"api\": {\"key\": \"k\"},\n  \"consumers\": [,]\n}");

        Assert.StartsWith("config is not valid JSON at line 3, position 17:", message);
    }

    [Fact]
    public void Top_level_must_be_an_object() =>
        Assert.Equal("config: expected a JSON object at the top level, got an array", Cfg.Error("[]"));

    [Fact]
    public void Missing_file_is_reported_with_its_path()
    {
        var path = Path.Combine(Path.GetTempPath(), $"no-such-dir-{Guid.NewGuid():N}", "config.json");

        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load(path, Cfg.Env()));

        Assert.Equal($"config file not found: {path}", ex.Message);
    }

    [Fact]
    public void Malformed_file_is_reported_with_its_path()
    {
        var path = Path.Combine(Path.GetTempPath(), $"centrifugo-actors-bad-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "{\"api\": }");
        try
        {
            var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load(path, Cfg.Env()));

            Assert.StartsWith($"config file {path} is not valid JSON at line 1, position 9:", ex.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
