using System.Diagnostics;
using System.Globalization;
using Centrifugo.Actors.Testing.StandIn;

namespace Centrifugo.Actors.Testing.Processes;

/// <summary>What one event did to delivery: every stream's longest silence around it, and its victim's share.</summary>
internal sealed record ClusterEventResult(
    string Name, int Victim, IReadOnlyList<string> VictimStreams, IReadOnlyList<StreamGap> Gaps, TimeSpan? AllResumedAfter, string Note)
{
    /// <summary>
    /// Victim partitions another running node also hosted when the event struck (two owners): their gaps say
    /// nothing about fail-over, the other owner kept delivering.
    /// </summary>
    public IReadOnlyList<string> AlsoHostedElsewhere { get; init; } = [];

    public StreamGap? MaxGap => Gaps.MaxBy(g => g.Gap);

    public IReadOnlyList<StreamGap> VictimGaps => Gaps.Where(g => VictimStreams.Contains(g.Stream, StringComparer.Ordinal)).ToArray();

    public StreamGap? MaxVictimGap => VictimGaps.MaxBy(g => g.Gap);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Name}: victim node-{Victim} hosted {VictimStreams.Count} partitions; their gaps: {DeliveryRecorder.Describe(VictimGaps)}; " +
        $"all partitions: {DeliveryRecorder.Describe(Gaps)}; every partition delivering again after " +
        $"{(AllResumedAfter is { } t ? $"{t.TotalMilliseconds:0} ms" : "— (not within the bound)")}" +
        $"{(Note.Length > 0 ? "; " + Note : "")}" +
        $"{(AlsoHostedElsewhere.Count > 0
            ? $"; TWO OWNERS at the event (also hosted by another node): {string.Join(",", AlsoHostedElsewhere)}"
            : "")}");
}

/// <summary>A join of a node: how long until every node hosted its share ±1, and the spread seen last.</summary>
internal sealed record SpreadResult(string Name, TimeSpan? Elapsed, string Last)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Name}: even spread (±1) {(Elapsed is { } t ? $"after {t.TotalMilliseconds:0} ms" : "NOT reached within the bound")}; " +
        $"last seen {Last}");
}

/// <summary>
/// The events of a cluster chaos run on a <see cref="NodeCluster"/> whose partitions each deliver to one stream
/// of a <see cref="DeliveryRecorder"/> (producers writing the whole time): kill -9, SIGTERM, SIGSTOP past the
/// downing time then SIGCONT, restart; each measured as per-stream delivery gaps. Bounds only cap the waiting:
/// results report what happened, the caller asserts.
/// </summary>
internal sealed class ClusterChaos(
    NodeCluster cluster, DeliveryRecorder recorder, IReadOnlyDictionary<string, string> streamOfEntity, Action<string> log)
{
    private static readonly TimeSpan Ready = TimeSpan.FromSeconds(90);

    /// <summary>
    /// After a kill -9 or a SIGSTOP, requests the victim had already sent can still be accepted by the stand-in for
    /// a while (its socket buffers are read by a busy harness): such a delivery is not the partition delivering
    /// again. The window of a kill or freeze therefore ends at each partition's first delivery after event + this
    /// grace (a faster resumption is still measured: the gap is the longest silence within the window).
    /// </summary>
    public static readonly TimeSpan StragglerGrace = TimeSpan.FromSeconds(3);

    private static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    public NodeCluster Cluster => cluster;

    public IReadOnlySet<string> Entities { get; } = streamOfEntity.Keys.ToHashSet(StringComparer.Ordinal);

    public IReadOnlyList<string> Streams { get; } = streamOfEntity.Values.ToArray();

    /// <summary>Starts node 0 (the oldest: first seed, shard coordinator and singletons), then the others together.</summary>
    public async Task<SpreadResult> StartAllAsync(TimeSpan spreadBound)
    {
        await cluster.StartReadyAsync(0, Ready);
        for (var i = 1; i < cluster.Count; i++)
        {
            cluster.Start(i);
        }

        for (var i = 1; i < cluster.Count; i++)
        {
            await cluster[i].WaitUntilReadyAsync(Ready);
        }

        return await SpreadAsync($"join of {cluster.Count} nodes", spreadBound);
    }

    public async Task<SpreadResult> SpreadAsync(string name, TimeSpan bound)
    {
        var (elapsed, last) = await cluster.WaitForEvenSpreadAsync(Entities, bound);
        var result = new SpreadResult(name, elapsed, last);
        log(result.ToString());
        return result;
    }

    /// <summary>Starts node i again (same ports), waits until it is ready, then for an even spread.</summary>
    public async Task<SpreadResult> RestartAsync(int index, TimeSpan spreadBound)
    {
        await cluster.StartReadyAsync(index, Ready);
        return await SpreadAsync($"rejoin of node-{index}", spreadBound);
    }

    /// <summary>kill -9 of node i.</summary>
    public async Task<ClusterEventResult> KillAsync(int index, TimeSpan bound)
    {
        var (victim, elsewhere) = await VictimStreamsAsync(index);
        var at = DeliveryRecorder.Now;
        log($"kill -9 of node-{index} at {DateTime.UtcNow:HH:mm:ss.fff} UTC");
        cluster[index].KillHard();
        await cluster[index].WaitForExitAsync(TimeSpan.FromSeconds(20));
        var until = at + Ticks(StragglerGrace);
        var resumed = await WaitAllResumedAsync(until, bound - StragglerGrace);
        return Report($"kill -9 of node-{index}", index, victim, elsewhere, at, until, resumed + StragglerGrace, "");
    }

    /// <summary>SIGTERM of node i: it leaves, hands its partitions off and exits.</summary>
    public async Task<ClusterEventResult> TerminateAsync(int index, TimeSpan bound)
    {
        var (victim, elsewhere) = await VictimStreamsAsync(index);
        var at = DeliveryRecorder.Now;
        cluster[index].Terminate();
        int exitCode;
        try
        {
            exitCode = await cluster[index].WaitForExitAsync(TimeSpan.FromSeconds(90));
        }
        catch (TimeoutException)
        {
            cluster[index].KillHard();
            exitCode = await cluster[index].WaitForExitAsync(TimeSpan.FromSeconds(20));
            log($"node-{index} did not exit within 90 s of SIGTERM; killed");
        }

        var gone = DeliveryRecorder.Now;
        var resumed = await WaitAllResumedAsync(gone, bound);
        var exitAfter = Stopwatch.GetElapsedTime(at, gone);
        return Report($"SIGTERM of node-{index}", index, victim, elsewhere, at, gone, resumed is { } r ? r + exitAfter : null,
            string.Create(CultureInfo.InvariantCulture, $"exit code {exitCode} after {exitAfter.TotalMilliseconds:0} ms"));
    }

    /// <summary>
    /// SIGSTOP of node i until every other node removed it from the membership (longer than the downing time, at
    /// most <paramref name="removalBound"/>), then SIGCONT; waits for the node to exit on its own (it learns it was
    /// downed) and kills it if it does not within 30 s.
    /// </summary>
    public async Task<ClusterEventResult> FreezeAsync(int index, TimeSpan bound, TimeSpan removalBound)
    {
        var (victim, elsewhere) = await VictimStreamsAsync(index);
        var at = DeliveryRecorder.Now;
        cluster[index].Stop();
        var removedTask = cluster.WaitUntilRemovedAsync(index, removalBound);
        var until = at + Ticks(StragglerGrace);
        var resumed = await WaitAllResumedAsync(until, bound - StragglerGrace) + StragglerGrace;
        var removed = await removedTask;
        var gaps = recorder.GapsAround(at, until, Streams);
        var frozen = Stopwatch.GetElapsedTime(at);
        cluster[index].Continue();
        string exit;
        try
        {
            var code = await cluster[index].WaitForExitAsync(TimeSpan.FromSeconds(30));
            exit = $"exited on its own with {code} after SIGCONT";
        }
        catch (TimeoutException)
        {
            cluster[index].KillHard();
            await cluster[index].WaitForExitAsync(TimeSpan.FromSeconds(20));
            exit = "still running 30 s after SIGCONT (killed)";
        }

        var note = string.Create(CultureInfo.InvariantCulture,
            $"removed from the membership {(removed is { } t ? $"after {t.TotalMilliseconds:0} ms" : "NOT within the bound")}, " +
            $"frozen {frozen.TotalMilliseconds:0} ms, {exit}");
        var result = new ClusterEventResult($"SIGSTOP of node-{index}", index, victim, gaps, resumed, note)
            { AlsoHostedElsewhere = elsewhere };
        log(result.ToString());
        return result;
    }

    private ClusterEventResult Report(
        string name, int index, IReadOnlyList<string> victim, IReadOnlyList<string> elsewhere, long from, long until, TimeSpan? resumed,
        string note)
    {
        var result = new ClusterEventResult(name, index, victim, recorder.GapsAround(from, until, Streams), resumed, note)
            { AlsoHostedElsewhere = elsewhere };
        log(result.ToString());
        return result;
    }

    private async Task<(IReadOnlyList<string> Streams, IReadOnlyList<string> Elsewhere)> VictimStreamsAsync(int index)
    {
        var hosted = await cluster.HostedAsync();
        var mine = hosted.GetValueOrDefault(index) ?? [];
        var others = hosted.Where(h => h.Key != index).SelectMany(h => h.Value).ToHashSet(StringComparer.Ordinal);
        string? Stream(string entity) => streamOfEntity.GetValueOrDefault(entity);
        return (mine.Select(Stream).OfType<string>().ToArray(), mine.Where(others.Contains).Select(Stream).OfType<string>().ToArray());
    }

    /// <summary>Waits until every stream delivered after <paramref name="since"/> (which may lie ahead); the time from
    /// <paramref name="since"/>, or null after <paramref name="bound"/>.</summary>
    private async Task<TimeSpan?> WaitAllResumedAsync(long since, TimeSpan bound)
    {
        while (!recorder.AllDeliveredAfter(Streams, since))
        {
            if (Stopwatch.GetTimestamp() > since && Stopwatch.GetElapsedTime(since) > bound)
            {
                return null;
            }

            await Task.Delay(50);
        }

        return Stopwatch.GetElapsedTime(since);
    }
}
