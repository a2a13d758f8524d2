using System.Globalization;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Cluster;

/// <summary>
/// The scenario both chaos tests run, and its checks. Bounds are CI-safe ceilings, well above the goals (a killed
/// node's partitions delivering again within 10 s, a SIGTERM gap ≤ 2 s, ±1 spread within 15 s of a join), which the
/// cluster benchmark measures. Every figure is printed; every check is made and reported together at the end so
/// one run shows everything that is off.
/// </summary>
internal static class ChaosRun
{
    public static readonly TimeSpan KillBound = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan TerminateBound = TimeSpan.FromSeconds(8);
    public static readonly TimeSpan FreezeBound = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan SpreadBound = TimeSpan.FromSeconds(30);
    /// <summary>How long the measurement waits for every partition to deliver again (beyond the asserted bound, to see the
    /// figure).</summary>
    private static readonly TimeSpan MeasureBound = TimeSpan.FromSeconds(60);
    /// <summary>How long a frozen node stays frozen at most while waiting for the others to remove it.</summary>
    private static readonly TimeSpan RemovalBound = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Node 0 first, then 1 and 2; kill -9 of node 0 (the oldest), restart; SIGTERM of node 1, restart; SIGSTOP of
    /// node 2 (now the oldest) until removed, SIGCONT, restart. Returns the failed checks (empty = all passed).
    /// </summary>
    /// <summary>
    /// The scenario with the cluster watch beside it and the load running: on failure the nodes' tails are printed; the
    /// load and the watch are stopped either way, and the watch's summary (reported, not asserted) is printed.
    /// </summary>
    public static async Task<List<string>> RunWatchedAsync(
        NodeCluster cluster, ClusterChaos chaos, Testing.Load.SteadyLoad load, ITestOutputHelper output, TimeSpan? terminateBound = null)
    {
        var watch = new ClusterWatch(cluster, TimeSpan.FromMilliseconds(500));
        List<string> failures;
        try
        {
            failures = await RunAsync(chaos, output, terminateBound);
        }
        catch
        {
            output.WriteLine(cluster.Tails(100));
            throw;
        }
        finally
        {
            await load.DisposeAsync();
            await watch.DisposeAsync();
        }

        output.WriteLine(watch.Summary());
        foreach (var (entity, longest, polls, nodes) in watch.DoubleHosted.Take(10))
        {
            output.WriteLine(
                FormattableString.Invariant($"  {entity} on {nodes}: longest {longest.TotalMilliseconds:0} ms, {polls} polls"));
        }
        return failures;
    }

    public static async Task<List<string>> RunAsync(ClusterChaos chaos, ITestOutputHelper output, TimeSpan? terminateBound = null)
    {
        var failures = new List<string>();
        var spreads = new List<SpreadResult>
        {
            await chaos.StartAllAsync(SpreadBound),
        };

        var kill = await chaos.KillAsync(0, MeasureBound);
        spreads.Add(await chaos.RestartAsync(0, SpreadBound));
        var terminate = await chaos.TerminateAsync(1, MeasureBound);
        spreads.Add(await chaos.RestartAsync(1, SpreadBound));
        var freeze = await chaos.FreezeAsync(2, MeasureBound, RemovalBound);
        spreads.Add(await chaos.RestartAsync(2, SpreadBound));

        Check(failures, kill, KillBound);
        Check(failures, terminate, terminateBound ?? TerminateBound);
        Check(failures, freeze, FreezeBound);
        if (!terminate.Note.StartsWith("exit code 0", StringComparison.Ordinal))
        {
            failures.Add($"{terminate.Name}: {terminate.Note}");
        }

        foreach (var spread in spreads.Where(s => s.Elapsed is null))
        {
            failures.Add($"{spread.Name}: no even spread (±1) within {SpreadBound.TotalSeconds} s, last {spread.Last}");
        }

        output.WriteLine("time to even spread: " + string.Join(", ", spreads.Select(s => string.Create(CultureInfo.InvariantCulture,
            $"{s.Name} {(s.Elapsed is { } t ? $"{t.TotalSeconds:0.0} s" : "not reached")}"))));
        return failures;
    }

    private static void Check(List<string> failures, ClusterEventResult result, TimeSpan bound)
    {
        if (result.AlsoHostedElsewhere.Count > 0)
        {
            failures.Add($"{result.Name}: partitions of the victim were hosted by another node too (two owners): " +
                $"{string.Join(",", result.AlsoHostedElsewhere)}");
        }

        var late = result.Gaps.Where(g => g.Open || g.Gap > bound).OrderByDescending(g => g.Gap).ToArray();
        if (late.Length > 0)
        {
            var worst = string.Join(", ", late.Take(6).Select(g => FormattableString.Invariant(
                $"{g.Stream} {g.Gap.TotalMilliseconds:0} ms{(g.Open ? " (still silent)" : "")}")));
            failures.Add(
                FormattableString.Invariant($"{result.Name}: {late.Length} partitions silent longer than {bound.TotalSeconds} s: {worst}"));
        }
    }

    /// <summary>
    /// After the producers stopped: waits (at most 90 s) for the backlog, then (at most 60 s) until the source is
    /// drained (<paramref name="drainedAsync"/>: every outbox row deleted, every Kafka offset committed), then checks
    /// loss and the order of last applications. Every command delivered once is not enough for the order check: a
    /// partition may still be re-sending the tail of its last batch after an error 100 (the tail's commands were all
    /// applied once, the re-send is what puts their last applications back in order), and only the drained source
    /// says that it is done. <paramref name="pendingAsync"/> gives the commands of a stream still waiting in the source
    /// (outbox rows not deleted, Kafka offsets not committed): undelivered and pending is a backlog not drained in
    /// time, undelivered and gone from the source is lost.
    /// </summary>
    public static async Task CheckDeliveriesAsync(
        DeliveryRecorder recorder, IReadOnlyList<string> streams, Func<string, Task<IReadOnlySet<long>>> pendingAsync,
        Func<Task<bool>> drainedAsync, List<string> failures, ITestOutputHelper output)
    {
        try
        {
            await Poll.UntilAsync(() => recorder.AllDelivered(streams), "every produced command delivered", TimeSpan.FromSeconds(90));
            await Poll.UntilAsync(drainedAsync, "the source drained (every partition done with its last batch)", TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException e)
        {
            failures.Add(e.Message);
        }

        var reports = streams.Select(recorder.Report).ToArray();
        output.WriteLine("deliveries: " + DeliveryRecorder.Summarise(reports));
        foreach (var r in reports.Where(r => r.Duplicates > 0 || r.FirstDeliveryReorderings > 0))
        {
            output.WriteLine(
                $"  {r.Stream}: {r.Produced} produced, {r.Duplicates} duplicates, {r.FirstDeliveryReorderings} first-delivery reorderings");
        }

        foreach (var r in reports)
        {
            if (r.Lost.Count > 0)
            {
                var pending = await pendingAsync(r.Stream);
                var lost = r.Lost.Where(seq => !pending.Contains(seq)).ToArray();
                var waiting = r.Lost.Count - lost.Length;
                if (waiting > 0)
                {
                    failures.Add($"{r.Stream}: {waiting} of {r.Produced} commands still waiting in the source (not drained in time), " +
                        $"first {string.Join(",", r.Lost.Where(pending.Contains).Take(5))}");
                }

                if (lost.Length > 0)
                {
                    failures.Add($"{r.Stream}: {lost.Length} of {r.Produced} commands LOST (gone from the source, never delivered), " +
                        $"first {string.Join(",", lost.Take(10))}");
                }
            }

            if (!r.LastApplicationInOrder)
            {
                // The outbox's last such case (1 run in ~10: a block of commands re-applied ~10 s late after the SIGSTOP)
                // was a frozen node counting its send window from the thaw instead of from its read (FrozenOwnerTests).
                // Kafka's one case in 23 runs was this check looking too early: a stream's last batch still being
                // re-sent after an error 100 (now it waits for the drained source).
                failures.Add($"{r.Stream}: {r.LastApplicationReorderings} commands whose last application came after a later command's; " +
                    $"around it (seq@ms): {r.ReorderingContext}");
            }

            if (r.Unexpected > 0)
            {
                failures.Add($"{r.Stream}: {r.Unexpected} deliveries of commands never produced");
            }

            if (r.Produced < 100)
            {
                failures.Add($"{r.Stream}: only {r.Produced} commands produced (the producer did not run throughout)");
            }
        }
    }
}
