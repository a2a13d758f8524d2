using System.Collections;
using Centrifugo.Actors.Configuration;

namespace Centrifugo.Actors.Tests.Configuration;

/// <summary>Builds configs for loader tests: a valid base plus the consumer JSON under test.</summary>
internal static class Cfg
{
    public const string PgDsn = "postgres://app:pg-S3cret-pass@localhost:5432/app?sslmode=disable";
    public const string ApiKey = "api-S3cret-key";
    public const string SaslPassword = "sasl-S3cret-pass";
    public const string TlsKey = "-----BEGIN PRIVATE KEY-----tls-S3cret-key-----END PRIVATE KEY-----";
    public const string TlsCert = "-----BEGIN CERTIFICATE-----cert-----END CERTIFICATE-----";
    public const string TlsCa = "-----BEGIN CERTIFICATE-----ca-----END CERTIFICATE-----";

    public static readonly string[] Secrets = ["pg-S3cret-pass", ApiKey, SaslPassword, "tls-S3cret-key"];

    public static string Pg(string name = "pg_main", string extra = "", string block = "") =>
        $$$"""{"name":"{{{name}}}","type":"postgresql"{{{extra}}},"postgresql":""" +
        $$$"""{"dsn":"{{{PgDsn}}}","outbox_table_name":"centrifugo_outbox"{{{block}}}}}""";

    public static string Kafka(string name = "kf_main", string extra = "", string block = "") =>
        $$$"""{"name":"{{{name}}}","type":"kafka"{{{extra}}},"kafka":""" +
        $$$"""{"brokers":["127.0.0.1:9092"],"topics":["commands"],"consumer_group":"cg"{{{block}}}}}""";

    public static string Config(params string[] consumers) =>
        $$$"""{"api":{"key":"{{{ApiKey}}}"},"consumers":[{{{string.Join(",", consumers)}}}]}""";

    public static Hashtable Env(params (string Name, string Value)[] vars)
    {
        var env = new Hashtable();
        foreach (var (name, value) in vars)
        {
            env[name] = value;
        }

        return env;
    }

    public static NodeOptions Load(string json, params (string Name, string Value)[] env) => ConfigLoader.LoadFromJson(json, Env(env));

    public static ConsumerOptions One(string json, params (string Name, string Value)[] env) => Assert.Single(Load(json, env).Consumers);

    /// <summary>The only consumer, which must be of type <typeparamref name="T"/>.</summary>
    public static T One<T>(string json, params (string Name, string Value)[] env) where T : ConsumerOptions =>
        Assert.IsType<T>(One(json, env));

    public static string Error(string json, params (string Name, string Value)[] env)
    {
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.LoadFromJson(json, Env(env)));
        foreach (var secret in Secrets)
        {
            Assert.DoesNotContain(secret, ex.Message, StringComparison.Ordinal);
        }

        return ex.Message;
    }
}
