using System.Text.Json;
using Centrifugo.Actors.Configuration;

namespace Centrifugo.Actors.Tests.Configuration;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class ConfigRedactionTests
{
    private static string FullConfig() => $$$"""
        { "api": {"url":"http://127.0.0.1:8000/api","key":"{{{Cfg.ApiKey}}}","timeout":"1m30s"},
          "consumers": [
            {"name":"pg_main","type":"postgresql","postgresql":{"dsn":"{{{Cfg.PgDsn}}}","outbox_table_name":"app.outbox",
               "partition_notification_dsn":"host=h user=u password=pg-S3cret-pass dbname=d","partition_notification_channel":"ch",
               "tls":{"enabled":true,"cert_pem":"{{{Cfg.TlsCert}}}","key_pem":"{{{Cfg.TlsKey}}}"} } },
            {"name":"kf_main","type":"kafka","kafka":{"brokers":["b:9092"],"topics":["t"],"consumer_group":"g",
               "sasl_mechanism":"scram-sha-256","sasl_user":"user","sasl_password":"{{{Cfg.SaslPassword}}}",
               "tls":true,"tls_key_pem":"{{{Cfg.TlsKey}}}","partition_queue_max_size":-1,"fetch_max_wait":"1.5s"} },
            {"name":"off","type":"postgresql","enabled":false}
          ] }
        """;

    [Fact]
    public void Redacted_output_contains_no_secret()
    {
        var json = ConfigLoader.ToRedactedJson(Cfg.Load(FullConfig()));

        foreach (var secret in Cfg.Secrets)
        {
            Assert.DoesNotContain(secret, json, StringComparison.Ordinal);
        }

        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        Assert.Equal("***", root.GetProperty("api").GetProperty("key").GetString());
        var pg = root.GetProperty("consumers")[0].GetProperty("postgresql");
        // DSNs keep host/db/options (useful when checking a config) with the password masked.
        Assert.Contains(":***@", pg.GetProperty("dsn").GetString(), StringComparison.Ordinal);
        Assert.Contains("***", pg.GetProperty("partition_notification_dsn").GetString(), StringComparison.Ordinal);
        Assert.Equal("***", pg.GetProperty("tls").GetProperty("key_pem").GetString());
        Assert.Equal(Cfg.TlsCert, pg.GetProperty("tls").GetProperty("cert_pem").GetString());
        var kafka = root.GetProperty("consumers")[1].GetProperty("kafka");
        Assert.Equal("***", kafka.GetProperty("sasl_password").GetString());
        Assert.Equal("***", kafka.GetProperty("tls").GetProperty("key_pem").GetString());
        Assert.Equal("user", kafka.GetProperty("sasl_user").GetString());
    }

    [Theory]
    [InlineData("http://admin:api-S3cret@centrifugo:8000/api", "http://admin:***@centrifugo:8000/api")]
    [InlineData("https://api-S3cret@centrifugo/api", "https://***@centrifugo/api")]
    [InlineData("http://centrifugo:8000/api", "http://centrifugo:8000/api")]
    public void Api_url_userinfo_is_masked(string url, string expected)
    {
        var json = ConfigLoader.ToRedactedJson(Cfg.Load(FullConfig().Replace("http://127.0.0.1:8000/api", url, StringComparison.Ordinal)));
        Assert.DoesNotContain("S3cret", json, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(expected, doc.RootElement.GetProperty("api").GetProperty("url").GetString());
    }

    [Fact]
    public void Redacted_output_is_the_effective_config_in_centrifugo_names()
    {
        using var doc = JsonDocument.Parse(ConfigLoader.ToRedactedJson(Cfg.Load(FullConfig())));
        var root = doc.RootElement;

        Assert.Equal("1m30s", root.GetProperty("api").GetProperty("timeout").GetString());
        Assert.Equal(100, root.GetProperty("api").GetProperty("max_batch_size").GetInt32());
        var consumers = root.GetProperty("consumers");
        Assert.Equal(3, consumers.GetArrayLength());
        var pg = consumers[0];
        Assert.Equal("pg_main", pg.GetProperty("name").GetString());
        Assert.Equal("postgresql", pg.GetProperty("type").GetString());
        Assert.True(pg.GetProperty("enabled").GetBoolean());
        Assert.Equal(1, pg.GetProperty("postgresql").GetProperty("num_partitions").GetInt32());
        Assert.Equal("300ms", pg.GetProperty("postgresql").GetProperty("partition_poll_interval").GetString());
        Assert.Equal("app.outbox_dead_letter", pg.GetProperty("postgresql").GetProperty("dead_letter_table_name").GetString());
        var kafka = consumers[1].GetProperty("kafka");
        Assert.Equal("1.5s", kafka.GetProperty("fetch_max_wait").GetString());
        Assert.Equal("3s", kafka.GetProperty("dial_timeout").GetString());
        Assert.Equal(-1, kafka.GetProperty("partition_queue_max_size").GetInt32());
        Assert.True(kafka.GetProperty("tls").GetProperty("enabled").GetBoolean());
        Assert.Equal("centrifugo-channels", kafka.GetProperty("publication_data_mode").GetProperty("channels_header").GetString());
        Assert.False(consumers[2].GetProperty("enabled").GetBoolean());
        Assert.Equal(4053, root.GetProperty("cluster").GetProperty("port").GetInt32());
        Assert.Equal("127.0.0.1:9110", root.GetProperty("admin").GetProperty("address").GetString());
    }

    [Fact]
    public void Redacted_output_loads_back_to_the_same_effective_values()
    {
        var original = Cfg.Load(FullConfig());
        var printed = ConfigLoader.ToRedactedJson(original);

        // Masked TLS keys are not PEM: they come back from the environment, as in a deployment.
        var reloaded = ConfigLoader.LoadFromJson(printed, Cfg.Env(
            ("CENTRIFUGO_CONSUMERS_PG_MAIN_POSTGRESQL_TLS_KEY_PEM", Cfg.TlsKey),
            ("CENTRIFUGO_CONSUMERS_KF_MAIN_KAFKA_TLS_KEY_PEM", Cfg.TlsKey)));

        Assert.Equal(printed, ConfigLoader.ToRedactedJson(reloaded));
        Assert.Equal(0, Assert.IsType<KafkaConsumer>(reloaded.Consumers[1]).Kafka.PartitionQueueMaxSize);
    }

    [Fact]
    public void Unset_secrets_print_as_empty_not_masked()
    {
        using var doc = JsonDocument.Parse(ConfigLoader.ToRedactedJson(Cfg.Load(Cfg.Config(Cfg.Kafka()))));
        var kafka = doc.RootElement.GetProperty("consumers")[0].GetProperty("kafka");

        Assert.Equal("", kafka.GetProperty("sasl_password").GetString());
        Assert.Equal("", kafka.GetProperty("tls").GetProperty("key_pem").GetString());
    }

    public static TheoryData<string, (string, string)[]> FailingConfigsCarryingSecrets() => new()
    {
        // bad JSON type on secret fields: the value must not be echoed
        { $$$"""{"api":{"key":12345},"consumers":[]}""", [] },
        { Cfg.Config(Cfg.Kafka(block: ""","sasl_password":["sasl-S3cret-pass"]""")), [] },
        { Cfg.Config(Cfg.Kafka(block: ""","tls":{"key_pem":{"v":"tls-S3cret-key"}}""")), [] },
        // JSON syntax error right after a secret
        { $$$"""{"api":{"key":"{{{Cfg.ApiKey}}}" "x":1}}""", [] },
        { $$$"""{"api":{"key":"{{{Cfg.ApiKey}}}\q"}}""", [] },
        // other errors in configs that hold every secret
        { Cfg.Config(Cfg.Pg(block: ""","num_partitions":-3""")), [] },
        { Cfg.Config(Cfg.Kafka(block: $$$""","sasl_mechanism":"aws-msk-iam","sasl_password":"{{{Cfg.SaslPassword}}}" """)), [] },
        { Cfg.Config(Cfg.Pg()), [("CENTRIFUGO_CONSUMERS", $$$"""[{"name":"x","postgresql":{"dsn":"{{{Cfg.PgDsn}}}"}""")] },
        { Cfg.Config(Cfg.Pg()), [("CENTRIFUGO_CONSUMERS_PG_MAIN_POSTGRESQL_USE_TRY_LOCK", Cfg.SaslPassword)] },
        { Cfg.Config(Cfg.Pg()), [("CENTRIFUGO_CONSUMERS_PG_MAIN_POSTGRESQL_NUM_PARTITIONS", Cfg.ApiKey)] },
        { Cfg.Config(Cfg.Pg()), [("CENTRIFUGO_CONSUMERS_PG_MAIN_POSTGRESQL_PARTITION_POLL_INTERVAL", Cfg.ApiKey)] },
        { """{"api":{}}""", [("CENTRIFUGO_ACTORS_CLUSTER_PORT", Cfg.ApiKey)] },
    };

    [Theory]
    [MemberData(nameof(FailingConfigsCarryingSecrets))]
    public void Error_messages_never_contain_a_secret_value(string json, (string, string)[] env) =>
        _ = Cfg.Error(json, env); // Cfg.Error asserts the message holds none of Cfg.Secrets
}
