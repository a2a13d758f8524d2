using System.Diagnostics;
using System.Globalization;
using Centrifugo.Actors.Testing.Postgres;

namespace Centrifugo.Actors.Testing.Load;

/// <summary>
/// An open-loop outbox producer for latency measurements: row i, the publish <c>{"channel":"latency","data":{"seq":i}}</c>
/// in partition <c>i % partitions</c>, is inserted in its own transaction at <c>start + i / rate</c> whatever the earlier
/// inserts do (a slow commit must not lower the offered rate), with at most <c>maxInFlight</c> transactions open at once.
/// </summary>
internal sealed class OpenLoopLoad
{
    private OpenLoopLoad(long start, long[] sent, long[] committed, TimeSpan produced)
    {
        Start = start;
        Sent = sent;
        Committed = committed;
        Produced = produced;
    }

    /// <summary><see cref="Stopwatch"/> timestamp at which row 0 was due.</summary>
    public long Start { get; }

    /// <summary>Per row, the <see cref="Stopwatch"/> timestamp its INSERT was sent.</summary>
    public long[] Sent { get; }

    /// <summary>Per row, the <see cref="Stopwatch"/> timestamp its commit returned to the producer.</summary>
    public long[] Committed { get; }

    /// <summary>From <see cref="Start"/> to the last commit.</summary>
    public TimeSpan Produced { get; }

    /// <summary>Inserts <paramref name="rows"/> rows at <paramref name="ratePerSecond"/> and returns once every one committed.</summary>
    public static async Task<OpenLoopLoad> RunAsync(
        OutboxTestTable table, int rows, double ratePerSecond, int partitions, int maxInFlight, CancellationToken cancellationToken)
    {
        var sent = new long[rows];
        var committed = new long[rows];
        var start = Stopwatch.GetTimestamp();
        var ticksPerRow = Stopwatch.Frequency / ratePerSecond;
        using var inFlight = new SemaphoreSlim(maxInFlight);
        var inserts = new List<Task>(rows);
        for (var i = 0; i < rows; i++)
        {
            var due = start + (long)(i * ticksPerRow);
            var wait = due - Stopwatch.GetTimestamp();
            if (wait > Stopwatch.Frequency / 1000)
            {
                await Task.Delay(TimeSpan.FromTicks(wait * TimeSpan.TicksPerSecond / Stopwatch.Frequency), cancellationToken);
            }

            await inFlight.WaitAsync(cancellationToken);
            inserts.Add(InsertAsync(i));
        }

        await Task.WhenAll(inserts);
        return new OpenLoopLoad(start, sent, committed, Stopwatch.GetElapsedTime(start));

        async Task InsertAsync(int i)
        {
            try
            {
                sent[i] = Stopwatch.GetTimestamp();
                await table.InsertOneAsync(new OutboxInsert("publish",
                    "{\"channel\":\"latency\",\"data\":{\"seq\":" + i.ToString(CultureInfo.InvariantCulture) + "}}", i % partitions),
                    cancellationToken);
                committed[i] = Stopwatch.GetTimestamp();
            }
            finally
            {
                inFlight.Release();
            }
        }
    }
}
