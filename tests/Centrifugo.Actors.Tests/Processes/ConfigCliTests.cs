using System.Text.Json.Nodes;
using Centrifugo.Actors.Testing.Processes;

namespace Centrifugo.Actors.Tests.Processes;

/// <summary>
/// Configuration errors through the real CLI: <c>check-config</c> and <c>run</c> exit 1 with the one message that
/// names the consumer and the field (every rule is unit-tested in Configuration/; these prove the wiring).
/// </summary>
public sealed class ConfigCliTests
{
    private static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(30);

    private static JsonObject Valid() => new NodeConfig
    {
        ApiUrl = "http://127.0.0.1:9/api",
        ApiKey = "cli-api-key",
        Consumers = [new PgConsumerConfig("pg_main", "postgres://app:cli-pass@127.0.0.1:9/app", "centrifugo_outbox")],
    }.ToJsonObject();

    private static JsonObject PgBlock(JsonObject config) => config["consumers"]![0]!["postgresql"]!.AsObject();

    public static TheoryData<string, string> Broken() => new()
    {
        { "missing outbox_table_name", "in consumer pg_main (postgresql): outbox_table_name is required" },
        { "bad consumer name", "in consumer pg-main (postgresql): name \"pg-main\" is invalid: it must match ^[a-zA-Z0-9_]{2,}$" },
        { "unknown key",
            "in consumer pg_main (postgresql): unknown key \"outbox_tabel_name\" in postgresql (did you mean \"outbox_table_name\"?)" },
        { "bad duration",
            "in consumer pg_main (postgresql): partition_poll_interval is missing a unit (use ns, us, µs, ms, s, m or h, e.g. \"300ms\")" },
        { "bad seed node", "in cluster: seed_nodes: \"10.0.0.1:4053\" is not an Akka address like akka.tcp://centrifugo-actors@host:4053" },
        { "unreadable tls cert",
            "in consumer pg_main (postgresql): tls.cert_pem is neither PEM, base64-encoded PEM nor an existing file path" },
        { "two kafka consumers on one group and topic", "consumers kf_a and kf_b both read topic \"commands\" in consumer_group \"cg\": " +
            "every record would be delivered by both and their offset commits would overwrite each other; " +
            "merge them into one consumer, or give each its own consumer_group (also when they point at different Kafka clusters)" },
    };

    private static JsonObject KafkaEntry(string name) => JsonNode.Parse(
        $$$"""{"name":"{{{name}}}","type":"kafka","kafka":""" +
        $$$"""{"brokers":["127.0.0.1:9"],"topics":["commands"],"consumer_group":"cg"}}""")!.AsObject();

    private static string Break(string what)
    {
        var config = Valid();
        switch (what)
        {
            case "missing outbox_table_name":
                PgBlock(config).Remove("outbox_table_name");
                break;
            case "bad consumer name":
                config["consumers"]![0]!["name"] = "pg-main";
                break;
            case "unknown key":
                PgBlock(config)["outbox_tabel_name"] = "x";
                break;
            case "bad duration":
                PgBlock(config)["partition_poll_interval"] = "300";
                break;
            case "bad seed node":
                config["cluster"]!["seed_nodes"] = new JsonArray("10.0.0.1:4053");
                break;
            case "unreadable tls cert":
                PgBlock(config)["tls"] = new JsonObject
                {
                    ["enabled"] = true, ["cert_pem"] = "/nonexistent/client.pem", ["key_pem"] = "/nonexistent/client.key",
                };
                break;
            case "two kafka consumers on one group and topic":
                config["consumers"]!.AsArray().Add(KafkaEntry("kf_a"));
                config["consumers"]!.AsArray().Add(KafkaEntry("kf_b"));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(what), what, null);
        }

        return config.ToJsonString();
    }

    [Theory]
    [MemberData(nameof(Broken))]
    public async Task Check_config_exits_1_with_one_message_naming_the_consumer_and_field(string what, string message)
    {
        var result = await NodeProcess.RunToExitAsync("check-config", Break(what), ExitBound);

        Assert.Equal(1, result.ExitCode);
        Assert.Equal("", result.Stdout.Trim());
        Assert.Equal($"configuration error: {message}", result.Stderr.Trim());
    }

    [Theory]
    [MemberData(nameof(Broken))]
    public async Task Run_exits_1_with_one_message_naming_the_consumer_and_field(string what, string message)
    {
        var result = await NodeProcess.RunToExitAsync("run", Break(what), ExitBound);

        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.EndsWith($"Configuration error: {message}", line, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_config_exits_0_and_prints_the_effective_configuration()
    {
        var result = await NodeProcess.RunToExitAsync("check-config", Valid().ToJsonString(), ExitBound);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("", result.Stderr);
        var effective = JsonNode.Parse(result.Stdout)!;
        Assert.Equal("centrifugo_outbox_dead_letter", (string?)effective["consumers"]![0]!["postgresql"]!["dead_letter_table_name"]);
        Assert.Equal("***", (string?)effective["api"]!["key"]);
    }

    [Fact]
    public async Task A_missing_config_file_is_a_configuration_error_not_a_crash()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"no-such-dir-{Guid.NewGuid():N}", "config.json");
        await using var direct = NodeProcess.StartWithArguments(["run", "--config", missing], "missing-file-direct");

        Assert.Equal(1, await direct.WaitForExitAsync(ExitBound));
        Assert.Contains($"config file not found: {missing}", direct.Output, StringComparison.Ordinal);
    }
}
