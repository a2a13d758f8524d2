using System.Diagnostics;
using System.Net;

namespace Centrifugo.Actors.Testing.Processes;

/// <summary>
/// Polls every running node of a <see cref="NodeCluster"/> (/status/partitions and /status/cluster) in the
/// background and records two things a healthy cluster never shows for long: a partition entity hosted (in a
/// state other than stopping) by two nodes at once, and nodes disagreeing about who is a member (Up). Each is
/// reported with how long its longest uninterrupted stretch lasted. Observations only; the caller decides.
/// </summary>
internal sealed class ClusterWatch : IAsyncDisposable
{
    private readonly NodeCluster _cluster;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (long Since, TimeSpan Longest, int Polls, string Nodes)> _double = new(StringComparer.Ordinal);
    private (long? Since, TimeSpan Longest, int Polls, string Example) _split;
    private long _polls;

    public ClusterWatch(NodeCluster cluster, TimeSpan interval)
    {
        _cluster = cluster;
        _loop = Task.Run(() => RunAsync(interval));
    }

    public long Polls => Interlocked.Read(ref _polls);

    /// <summary>Entities seen on two nodes at once, with the longest uninterrupted stretch and the nodes.</summary>
    public IReadOnlyList<(string Entity, TimeSpan Longest, int Polls, string Nodes)> DoubleHosted
    {
        get
        {
            lock (_gate)
            {
                return _double.Select(d => (d.Key, d.Value.Longest, d.Value.Polls, d.Value.Nodes)).OrderByDescending(d => d.Longest)
                    .ToArray();
            }
        }
    }

    /// <summary>Polls in which running nodes disagreed about the Up members, the longest stretch, and one example.</summary>
    public (TimeSpan Longest, int Polls, string Example) MembershipSplits
    {
        get
        {
            lock (_gate)
            {
                return (_split.Longest, _split.Polls, _split.Example);
            }
        }
    }

    public string Summary()
    {
        var doubles = DoubleHosted;
        var split = MembershipSplits;
        var worst = doubles.Count > 0
            ? FormattableString.Invariant(
                $" (longest {doubles[0].Longest.TotalMilliseconds:0} ms: {doubles[0].Entity} on {doubles[0].Nodes})")
            : "";
        var splits = split.Polls > 0
            ? FormattableString.Invariant($" (longest {split.Longest.TotalMilliseconds:0} ms; e.g. {split.Example})")
            : "";
        return FormattableString.Invariant($"cluster watch ({Polls} polls): {doubles.Count} partitions seen on two nodes at once{worst}; ")
            + FormattableString.Invariant($"membership views disagreed in {split.Polls} polls{splits}");
    }

    private async Task RunAsync(TimeSpan interval)
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await PollAsync();
            }
            catch (Exception e)
                when (e is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException or InvalidOperationException)
            {
                // A node going away mid-poll: the next poll sees the new state.
            }

            try
            {
                await Task.Delay(interval, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task PollAsync()
    {
        var running = _cluster.Running;
        var polled = await Task.WhenAll(running.Select(async i =>
        {
            var node = _cluster[i];
            var partitions = await node.PartitionsAsync();
            var members = await node.ClusterMembersAsync();
            var answered = await node.GetAsync("/health/live") is { Status: HttpStatusCode.OK };
            return (Index: i, Partitions: partitions, Members: members, Answered: answered);
        }));
        var now = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _polls);
        lock (_gate)
        {
            var hosts = polled
                .SelectMany(p => p.Partitions.Where(h => h.State != "stopping").Select(h => (h.EntityId, p.Index)))
                .GroupBy(x => x.EntityId, StringComparer.Ordinal)
                .Where(g => g.Count() > 1)
                .ToDictionary(g => g.Key, g => string.Join("+", g.Select(x => $"node-{x.Index}")), StringComparer.Ordinal);
            foreach (var entity in _double.Keys.ToArray())
            {
                if (!hosts.ContainsKey(entity))
                {
                    _double[entity] = _double[entity] with { Since = 0 };
                }
            }

            foreach (var (entity, nodes) in hosts)
            {
                var current = _double.TryGetValue(entity, out var seen) ? seen : (0, TimeSpan.Zero, 0, nodes);
                var since = current.Since == 0 ? now : current.Since;
                var stretch = Stopwatch.GetElapsedTime(since, now);
                _double[entity] = (since, stretch > current.Longest ? stretch : current.Longest, current.Polls + 1, nodes);
            }

            var views = polled.Where(p => p.Answered && p.Members.Count > 0)
                .Select(p => (p.Index, Up: string.Join(",", p.Members.Where(m => m.Value == "Up")
                    .Select(m => m.Key[(m.Key.LastIndexOf(':') + 1)..]).Order(StringComparer.Ordinal))))
                .ToArray();
            if (views.Select(v => v.Up).Distinct(StringComparer.Ordinal).Count() > 1)
            {
                var since = _split.Since ?? now;
                var stretch = Stopwatch.GetElapsedTime(since, now);
                _split = (since, stretch > _split.Longest ? stretch : _split.Longest, _split.Polls + 1,
                    stretch >= _split.Longest
                        ? string.Join("; ", views.Select(v => $"node-{v.Index} sees Up ports {v.Up}")) : _split.Example);
            }
            else
            {
                _split = _split with { Since = null };
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}
