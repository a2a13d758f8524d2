using System.Text.Json;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;

namespace Centrifugo.Actors.Tests.Processes;

/// <summary>
/// Classes that start node processes run one after another (each node is a whole .NET process with an actor
/// system; on two cores several at once would turn timing bounds into noise); they still run in parallel with
/// every other test class.
/// </summary>
[CollectionDefinition(Name)]
public sealed class NodeProcessCollection
{
    public const string Name = "node-processes";
}

/// <summary>Rows numbered per channel, and the delivery check every process test makes.</summary>
internal static class OutboxRows
{
    public static OutboxInsert Publish(string channel, long seq, int partition) =>
        new("publish", JsonSerializer.Serialize(new { channel, data = new { seq } }), partition);

    public static long Seq(ReceivedCommand command)
    {
        using var doc = JsonDocument.Parse(command.RequestJson);
        return doc.RootElement.GetProperty("data").GetProperty("seq").GetInt64();
    }

    /// <summary>
    /// At-least-once in order: every seq 0..count-1 arrived, and ordering each seq by its LAST delivery gives
    /// 0..count-1 (a redelivered suffix is allowed, a gap or a reordering is not).
    /// </summary>
    public static void AssertDeliveredInOrder(CentrifugoStandIn standIn, string channel, long count)
    {
        var received = standIn.ReceivedFor(channel).Select(Seq).ToArray();
        var expected = Enumerable.Range(0, checked((int)count)).Select(i => (long)i).ToArray();
        var missing = expected.Except(received).ToArray();
        Assert.True(missing.Length == 0, $"{channel}: {missing.Length} rows never delivered, first {string.Join(",", missing.Take(10))}");
        var lastOccurrence = received.Select((seq, index) => (seq, index)).GroupBy(x => x.seq)
            .OrderBy(g => g.Max(x => x.index)).Select(g => g.Key).ToArray();
        Assert.Equal(expected, lastOccurrence);
    }
}
