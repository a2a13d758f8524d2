using Centrifugo.Actors.Configuration;
using System.Text.Json;
using System.Text.RegularExpressions;
using Centrifugo.Actors.Host;
using Centrifugo.Actors.Operations;
using Centrifugo.Actors.Tests.Node;
using Xunit.Abstractions;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;
using static Centrifugo.Actors.Tests.KafkaNode.KafkaNodeSupport;

namespace Centrifugo.Actors.Tests.KafkaNode;

/// <summary><c>dead-letters list|replay</c> for a kafka consumer (real Kafka protocol, real HTTP).</summary>
public sealed class KafkaDeadLetterReplayTests(ITestOutputHelper output) : KafkaNodeTest(output)
{
    private static async Task<(int Code, string Out, string Err)> Run(Func<VerbContext, Task<int>> verb, string url)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        using var client = new AdminClient(url, token: null);
        var code = await AdminCli.RunAsync(VerbContext.Create(client, output, error), verb);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Replay_produces_the_dead_letters_back_to_their_source_partition_in_offset_order_once()
    {
        var topic = Topic("kdl", 2);
        KafkaCluster.CreateTopic(topic + ".dead_letter", 1);
        var group = Unique("g");
        await using var node = await StartNodeAsync(TestNode.Kafka("k_dl", KafkaCluster.Bootstrap, group, topic));
        await node.WaitForPartitionsAsync(2, TimeSpan.FromSeconds(60));

        using (var producer = Producer(KafkaCluster.Bootstrap))
        {
            // Centrifugo answers 102 (permanent) to the first 3 records of partition 0, then to the first 2 of partition 1.
            StandIn.FailNext(3, errorCode: 102);
            await ProduceEnvelopesAsync(producer, topic, 0, "kd:", 10);
            await Poll.UntilAsync(() => Committed(KafkaCluster.Bootstrap, group, topic, 0) == 10,
                "partition 0 committed", TimeSpan.FromSeconds(60));
            StandIn.FailNext(2, errorCode: 102);
            await ProduceEnvelopesAsync(producer, topic, 1, "kd:", 5);
            await Poll.UntilAsync(() => Committed(KafkaCluster.Bootstrap, group, topic, 1) == 5,
                "partition 1 committed", TimeSpan.FromSeconds(60));
        }
        Assert.Equal([3L, 4, 5, 6, 7, 8, 9], StandIn.ReceivedFor("kd:p0").Select(Seq).ToArray());
        Assert.Equal([2L, 3, 4], StandIn.ReceivedFor("kd:p1").Select(Seq).ToArray());

        var list = await Run(v => AdminCli.DeadLettersListAsync(v, "k_dl", 50, json: true), node.AdminUrl);
        Assert.True(list.Code == AdminCli.Ok, list.Err);
        using (var doc = JsonDocument.Parse(list.Out))
        {
            var consumer = Assert.Single(doc.RootElement.GetProperty("consumers").EnumerateArray());
            Assert.Equal("kafka", consumer.GetProperty("source").GetString());
            Assert.Equal(5, consumer.GetProperty("total").GetInt64());
            var items = consumer.GetProperty("items").EnumerateArray().ToArray();
            Assert.Equal([0L, 0, 0, 1, 1], items.Select(i => (long)i.GetProperty("source_partition").GetInt32()));
            Assert.Equal([0L, 1, 2, 0, 1], items.Select(i => i.GetProperty("source_offset").GetInt64()));
            Assert.All(items, i => Assert.Contains("102", i.GetProperty("reason").GetString(), StringComparison.Ordinal));
        }

        // The table shows where each record is and which source record it was.
        var table = await Run(v => AdminCli.DeadLettersListAsync(v, "k_dl", 50, json: false), node.AdminUrl);
        Assert.Contains($"k_dl (kafka, {topic}.dead_letter): 5 dead letter(s), showing 5", table.Out, StringComparison.Ordinal);
        Assert.Matches(
            $@"{Regex.Escape(topic)}\.dead_letter/0\s+3\s+{Regex.Escape(topic)}/1@0\s+centrifugo error 102\S*.*\s+no\s", table.Out);

        var ids = await Run(v => AdminCli.DeadLettersReplayAsync(v, "k_dl", [1], false, false), node.AdminUrl);
        Assert.Equal(AdminCli.Usage, ids.Code);

        var replay = await Run(v => AdminCli.DeadLettersReplayAsync(v, "k_dl", [], true, false), node.AdminUrl);
        Assert.True(replay.Code == AdminCli.Ok, replay.Err);
        Assert.Contains("replayed 5 dead letter(s) of k_dl", replay.Out, StringComparison.Ordinal);
        await Poll.UntilAsync(() => StandIn.ReceivedFor("kd:p0").Count == 10 && StandIn.ReceivedFor("kd:p1").Count == 5,
            "replayed records delivered", TimeSpan.FromSeconds(60));
        Assert.Equal([3L, 4, 5, 6, 7, 8, 9, 0, 1, 2], StandIn.ReceivedFor("kd:p0").Select(Seq).ToArray());
        Assert.Equal([2L, 3, 4, 0, 1], StandIn.ReceivedFor("kd:p1").Select(Seq).ToArray());
        Assert.Equal(5L, Committed(KafkaCluster.Bootstrap, group + KafkaDeadLetters.ReplayGroupInfix + "k_dl", topic + ".dead_letter", 0));

        // Idempotent: the replay group's committed offset is past every dead letter.
        var again = await Run(v => AdminCli.DeadLettersReplayAsync(v, "k_dl", [], true, false), node.AdminUrl);
        Assert.Equal(AdminCli.Ok, again.Code);
        Assert.Contains("replayed 0 dead letter(s)", again.Out, StringComparison.Ordinal);
        await Poll.UntilAsync(
            () => Committed(KafkaCluster.Bootstrap, group, topic, 0) == 13 && Committed(KafkaCluster.Bootstrap, group, topic, 1) == 7,
            "replayed records committed", TimeSpan.FromSeconds(30));
        Assert.Equal(10, StandIn.ReceivedFor("kd:p0").Count);
    }

    private static KafkaConsumer WithDeadLetterTopic(KafkaConsumer consumer, string topic) =>
        consumer with { Kafka = consumer.Kafka with { DeadLetterTopic = topic } };

    private static int Replayed(string output) =>
        int.Parse(System.Text.RegularExpressions.Regex.Match(output, @"replayed (\d+) dead letter").Groups[1].Value,
            System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Consumers_sharing_a_group_and_a_dead_letter_topic_each_replay_their_own_records()
    {
        var a = Topic("kdla", 1);
        var b = Topic("kdlb", 1);
        var dlq = Unique("dlq");
        KafkaCluster.CreateTopic(dlq, 1);
        var group = Unique("g");
        await using var node = await StartNodeAsync(
            WithDeadLetterTopic(TestNode.Kafka("k_a", KafkaCluster.Bootstrap, group, a), dlq),
            WithDeadLetterTopic(TestNode.Kafka("k_b", KafkaCluster.Bootstrap, group, b), dlq));
        await node.WaitForPartitionsAsync(2, TimeSpan.FromSeconds(60));
        using (var producer = Producer(KafkaCluster.Bootstrap))
        {
            StandIn.FailNext(2, errorCode: 102);
            await ProduceEnvelopesAsync(producer, a, 0, "ka:", 2);
            await Poll.UntilAsync(() => Committed(KafkaCluster.Bootstrap, group, a, 0) == 2, "k_a committed", TimeSpan.FromSeconds(60));
            StandIn.FailNext(3, errorCode: 102);
            await ProduceEnvelopesAsync(producer, b, 0, "kb:", 3);
            await Poll.UntilAsync(() => Committed(KafkaCluster.Bootstrap, group, b, 0) == 3, "k_b committed", TimeSpan.FromSeconds(60));
        }

        var replayA = await Run(v => AdminCli.DeadLettersReplayAsync(v, "k_a", [], true, false), node.AdminUrl);
        Assert.True(replayA.Code == AdminCli.Ok, replayA.Err);
        Assert.Equal(2, Replayed(replayA.Out));

        // k_a's replay moved only its own group past the shared topic: k_b's records are still pending and replayable.
        var listB = await Run(v => AdminCli.DeadLettersListAsync(v, "k_b", 50, json: true), node.AdminUrl);
        using (var doc = JsonDocument.Parse(listB.Out))
        {
            var items = Assert.Single(doc.RootElement.GetProperty("consumers").EnumerateArray()).GetProperty("items").EnumerateArray()
                .ToArray();
            Assert.Equal(3, items.Length);
            Assert.All(items, i => Assert.False(i.GetProperty("replayed").GetBoolean()));
        }
        var replayB = await Run(v => AdminCli.DeadLettersReplayAsync(v, "k_b", [], true, false), node.AdminUrl);
        Assert.True(replayB.Code == AdminCli.Ok, replayB.Err);
        Assert.Equal(3, Replayed(replayB.Out));
        await Poll.UntilAsync(() => StandIn.ReceivedFor("ka:p0").Count == 2 && StandIn.ReceivedFor("kb:p0").Count == 3,
            "replayed records delivered", TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task After_the_upgrade_a_replay_starts_where_the_shared_replay_group_stopped()
    {
        var topic = Topic("kdlm", 1);
        KafkaCluster.CreateTopic(topic + ".dead_letter", 1);
        var group = Unique("g");
        await using var node = await StartNodeAsync(TestNode.Kafka("k_mig", KafkaCluster.Bootstrap, group, topic));
        await node.WaitForPartitionsAsync(1, TimeSpan.FromSeconds(60));
        using (var producer = Producer(KafkaCluster.Bootstrap))
        {
            StandIn.FailNext(4, errorCode: 102);
            await ProduceEnvelopesAsync(producer, topic, 0, "km:", 4);
            await Poll.UntilAsync(() => Committed(KafkaCluster.Bootstrap, group, topic, 0) == 4,
                "dead-lettered and committed", TimeSpan.FromSeconds(60));
        }
        // A replay by the previous version moved the shared group past the first two dead letters.
        using (var legacy = Consumer(KafkaCluster.Bootstrap, group + KafkaDeadLetters.LegacyReplayGroupSuffix))
        {
            legacy.Commit([new Confluent.Kafka.TopicPartitionOffset(topic + ".dead_letter", 0, 2)]);
        }

        var replay = await Run(v => AdminCli.DeadLettersReplayAsync(v, "k_mig", [], true, false), node.AdminUrl);

        Assert.True(replay.Code == AdminCli.Ok, replay.Err);
        Assert.Equal(2, Replayed(replay.Out));
        await Poll.UntilAsync(() => StandIn.ReceivedFor("km:p0").Count == 2,
            "the two not yet replayed delivered", TimeSpan.FromSeconds(60));
        Assert.Equal([2L, 3], StandIn.ReceivedFor("km:p0").Select(Seq).ToArray());
        Assert.Equal(4L, Committed(KafkaCluster.Bootstrap, group + KafkaDeadLetters.ReplayGroupInfix + "k_mig", topic + ".dead_letter", 0));
    }
}
