using Centrifugo.Actors.Hosting;
using Centrifugo.Actors.Tests.Configuration;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Tests.Hosting;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class StartupHintsTests
{
    [Fact]
    public void Reads_larger_than_max_batch_size_are_named_once_per_enabled_consumer()
    {
        var options = Cfg.Load(Cfg.Config(
            Cfg.Pg("pg_big", block: ""","partition_select_limit":1000"""),
            Cfg.Pg("pg_default"),
            Cfg.Pg("pg_off", extra: ""","enabled":false""", block: ""","partition_select_limit":1000"""),
            Cfg.Kafka("kf_big", block: ""","max_poll_records":250""")));

        var hints = StartupHints.SplitReads(options.Consumers, options.Api.MaxBatchSize).ToArray();

        Assert.Equal([("pg_big", 1000, "partition_select_limit"), ("kf_big", 250, "max_poll_records")], hints);
    }

    [Fact]
    public void The_hint_says_how_many_requests_a_read_becomes_and_what_to_set()
    {
        var options = Cfg.Load(Cfg.Config(Cfg.Pg("pg_big", block: ""","partition_select_limit":1000""")));
        using var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs));

        StartupHints.Log(factory.CreateLogger("test"), options);

        var line = Assert.Single(logs.Lines);
        Assert.Contains(
            "Consumer pg_big: partition_select_limit 1000 is larger than api.max_batch_size 100", line, StringComparison.Ordinal);
        Assert.Contains("10 sequential /batch requests; api.max_batch_size 1000 would send it as one", line, StringComparison.Ordinal);
    }

    [Fact]
    public void Matching_sizes_give_no_hint()
    {
        var options = Cfg.Load("""{"api":{"key":"k","max_batch_size":1000},"consumers":[""" +
                               Cfg.Pg("pg_big", block: ""","partition_select_limit":1000""") + "]}");

        Assert.Empty(StartupHints.SplitReads(options.Consumers, options.Api.MaxBatchSize));
    }
}
