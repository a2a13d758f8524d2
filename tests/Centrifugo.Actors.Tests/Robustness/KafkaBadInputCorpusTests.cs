using System.Text;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Tests.KafkaNode;
using Centrifugo.Actors.Tests.Node;
using Confluent.Kafka;
using Xunit.Abstractions;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;
using static Centrifugo.Actors.Tests.KafkaNode.KafkaNodeSupport;

namespace Centrifugo.Actors.Tests.Robustness;

/// <summary>
/// Bad-input corpus for the Kafka source: every bad record is followed by a good command in the same partition.
/// The good ones must all arrive in order, each bad one is delivered or dead-lettered with a reason (naming
/// consumer, topic, partition and offset in its headers), the committed offset reaches the end, and the partition
/// never restarts.
/// </summary>
public sealed class KafkaBadInputCorpusTests(ITestOutputHelper output) : KafkaNodeTest(output)
{
    /// <summary>A bad record; <paramref name="MustDeadLetter"/> false = Centrifugo may accept it (delivered or dead-lettered).</summary>
    private sealed record Bad(
        string Name, byte[]? Value, string? MethodHeader = null, bool MustDeadLetter = true, byte[]? RawMethodHeader = null);

    private static byte[] U(string s) => Encoding.UTF8.GetBytes(s);

    private static IEnumerable<Bad> Corpus()
    {
        yield return new("surrogate in method", U("""{"method":"pub\udc00lish","payload":{"channel":"corpus:x"}}"""));
        yield return new("surrogate in a key", U("""{"meth\ud800od":1,"method":"publish","payload":{"channel":"corpus:x"}}"""));
        yield return new("surrogate in a JSON-string payload", U("""{"method":"publish","payload":"{\"channel\":\"\ud800\"}"}"""));
        yield return new("surrogate in an object payload",
            U("""{"method":"publish","payload":{"channel":"corpus:s","data":{"t":"\ud800"}}}"""), MustDeadLetter: false);
        yield return new("invalid UTF-8 in method", [.. """{"method":"pub"""u8, 0xFF, .. """lish","payload":{"channel":"corpus:x"}}"""u8]);
        yield return new(
            "invalid UTF-8 in the method header", U("""{"channel":"corpus:x"}"""), RawMethodHeader: [.. "pub"u8, 0xFF, .. "lish"u8]);
        yield return new(
            "surrogate in a header-mode request", U("""{"channel":"corpus:h","data":{"t":"\udc00"}}"""), "publish", MustDeadLetter: false);
        yield return new("malformed JSON", U("{not json"));
        yield return new("truncated JSON", U("""{"method":"publish","payload":{"channel":"corpus:x","""));
        yield return new("empty value", []);
        yield return new("tombstone", null);
        yield return new("JSON null", U("null"));
        yield return new("array", U("[]"));
        yield return new("string", U("\"str\""));
        yield return new("empty object", U("{}"));
        yield return new("method a number", U("""{"method":5,"payload":{}}"""));
        yield return new("method empty", U("""{"method":"","payload":{}}"""));
        yield return new("payload an array", U("""{"method":"publish","payload":[1]}"""));
        yield return new("payload null", U("""{"method":"publish","payload":null}"""));
        yield return new("payload missing", U("""{"method":"publish"}"""));
        yield return new("deep nesting", U("""{"method":"publish","payload":{"channel":"corpus:x","data":""" +
            new string('[', 20_000) + new string(']', 20_000) + "}}"));
        yield return new("huge malformed value",
            U("{\"method\":\"publish\",\"payload\":{\"channel\":\"corpus:x\",\"data\":\"" + new string('x', 400_000)));
        yield return new("unknown method", U("""{"method":"explode","payload":{"channel":"corpus:x"}}"""));
        yield return new("read-only method", U("""{"method":"presence","payload":{"channel":"corpus:x"}}"""));
        yield return new("batch as a method", U("""{"method":"batch","payload":{"commands":[]}}"""));
        yield return new("batch as the method header", U("""{"commands":[]}"""), "batch");
        yield return new("wrong type in the request", U("""{"channel":5}"""), "publish");
        yield return new("unknown namespace", U("""{"channel":"unknown:x","data":{}}"""), "publish");
    }

    [Fact]
    public async Task Every_bad_record_is_delivered_or_dead_lettered_and_the_good_one_behind_it_arrives()
    {
        var topic = Topic("corpus", 1);
        KafkaCluster.CreateTopic(topic + ".dead_letter", 1);
        var group = Unique("g");
        var corpus = Corpus().ToArray();
        var badOffsets = new Dictionary<long, Bad>();
        using (var producer = Producer(KafkaCluster.Bootstrap))
        {
            var offset = 0L;
            await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[]?, byte[]?> { Value = Envelope("corpus:good", 0) });
            offset++;
            for (var i = 0; i < corpus.Length; i++)
            {
                var bad = corpus[i];
                var headers = new Headers();
                if (bad.MethodHeader is not null)
                {
                    headers.Add("centrifugo-method", U(bad.MethodHeader));
                }
                if (bad.RawMethodHeader is not null)
                {
                    headers.Add("centrifugo-method", bad.RawMethodHeader);
                }
                await producer.ProduceAsync(
                    new TopicPartition(topic, 0), new Message<byte[]?, byte[]?> { Key = U("k" + i), Value = bad.Value, Headers = headers });
                badOffsets[offset++] = bad;
                await producer.ProduceAsync(
                    new TopicPartition(topic, 0), new Message<byte[]?, byte[]?> { Value = Envelope("corpus:good", i + 1) });
                offset++;
            }
        }

        var total = 1 + (2 * corpus.Length);
        await using var node = await StartNodeAsync(TestNode.Kafka("k_corpus", KafkaCluster.Bootstrap, group, topic));

        await Poll.UntilAsync(() => Committed(KafkaCluster.Bootstrap, group, topic, 0) == total,
            "offset committed past every record", TimeSpan.FromSeconds(60));
        Assert.Equal(Enumerable.Range(0, corpus.Length + 1).Select(i => (long)i), StandIn.ReceivedFor("corpus:good").Select(Seq));

        var mustDead = badOffsets.Where(b => b.Value.MustDeadLetter).Select(b => b.Key).ToHashSet();
        var deadLettered = node.Board.Snapshot().Where(st => st.Source == PartitionSource.Kafka).Sum(st => st.DeadLettered);
        Assert.InRange(deadLettered, mustDead.Count, badOffsets.Count);
        var dead = ReadAll(KafkaCluster.Bootstrap, topic + ".dead_letter", 1, checked((int)deadLettered));
        Assert.Equal(deadLettered, dead.Count);
        string H(ConsumeResult<byte[]?, byte[]?> r, string key) => Text(r.Message.Headers.GetLastBytes(key));
        var deadOffsets = dead.Select(r =>
            long.Parse(H(r, KafkaDeadLetterProducer.SourceOffsetHeader), System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();
        foreach (var offset in mustDead)
        {
            Assert.True(deadOffsets.Contains(offset), $"'{badOffsets[offset].Name}' (offset {offset}) is not in the dead-letter topic");
        }
        Assert.All(dead, r =>
        {
            Assert.Equal("k_corpus", H(r, KafkaDeadLetterProducer.ConsumerHeader));
            Assert.Equal(topic, H(r, KafkaDeadLetterProducer.SourceTopicHeader));
            Assert.Equal("0", H(r, KafkaDeadLetterProducer.SourcePartitionHeader));
            Assert.False(string.IsNullOrWhiteSpace(H(r, KafkaDeadLetterProducer.ReasonHeader)));
        });
        // The bad records that were not dead-lettered were delivered (Centrifugo accepted them).
        foreach (var (offset, bad) in badOffsets.Where(b => !deadOffsets.Contains(b.Key)))
        {
            Assert.False(bad.MustDeadLetter, bad.Name);
        }

        // Never a restart loop: the partition's stream did not fail and no decoder exception escaped.
        Assert.DoesNotContain(node.Logs.Lines, l => l.Contains("[5010]", StringComparison.Ordinal));
        Assert.DoesNotContain(node.Logs.Lines, l => l.Contains("[4033]", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task With_derived_idempotency_keys_a_request_the_key_scan_cannot_unescape_is_delivered_and_the_records_behind_it_flow(
        bool methodHeader)
    {
        // A lone-surrogate escape in a property name: Centrifugo's Go decoder reads it as U+FFFD, so the request is valid
        // for Centrifugo, and that name is not idempotency_key, so the request gets the derived key.
        const string Request = """{"channel":"corpus:p","data":{},"x\ud800":1}""";
        var topic = Topic("poison", 1);
        var group = Unique("g");
        using (var producer = Producer(KafkaCluster.Bootstrap))
        {
            await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[]?, byte[]?> { Value = Envelope("corpus:good", 0) });
            var poison = methodHeader
                ? new Message<byte[]?, byte[]?> { Value = U(Request), Headers = new Headers { { "centrifugo-method", U("publish") } } }
                : new Message<byte[]?, byte[]?> { Value = U("""{"method":"publish","payload":""" + Request + "}") };
            await producer.ProduceAsync(new TopicPartition(topic, 0), poison);
            await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[]?, byte[]?> { Value = Envelope("corpus:good", 1) });
        }

        var consumer = TestNode.Kafka("k_poison", KafkaCluster.Bootstrap, group, topic);
        consumer = consumer with { Kafka = consumer.Kafka with { DeriveIdempotencyKey = true } };
        await using var node = await StartNodeAsync(consumer);

        await Poll.UntilAsync(() => Committed(KafkaCluster.Bootstrap, group, topic, 0) == 3,
            "offset committed past every record", TimeSpan.FromSeconds(30));
        var goods = StandIn.ReceivedFor("corpus:good");
        Assert.Equal([0L, 1L], goods.Select(Seq));
        var delivered = Assert.Single(StandIn.ReceivedFor("corpus:p"));
        Assert.Equal($"ca:k_poison:{topic}:0:1", delivered.IdempotencyKey);
        Assert.InRange(delivered.Sequence, goods[0].Sequence + 1, goods[1].Sequence - 1);
        Assert.Equal(0, node.Board.Snapshot().Where(st => st.Source == PartitionSource.Kafka).Sum(st => st.DeadLettered));
        Assert.DoesNotContain(node.Logs.Lines, l =>
            l.Contains("[5010]", StringComparison.Ordinal) || l.Contains("[4033]", StringComparison.Ordinal));
    }
}
