using System.Diagnostics;
using System.Net;

namespace Centrifugo.Actors.Testing.Processes;

/// <summary>
/// N <c>centrifugo-actors run</c> processes on 127.0.0.1 with unique cluster and admin ports and one shared seed
/// list (every node's address, node 0 first). Node i can be stopped, killed and started again on the same ports
/// (a new incarnation, like a restarted pod). Earlier incarnations are kept until dispose for their output.
/// </summary>
internal sealed class NodeCluster : IAsyncDisposable
{
    private readonly NodeProcess?[] _nodes;
    private readonly int[] _incarnations;
    private readonly List<NodeProcess> _retired = [];

    private NodeCluster(IReadOnlyList<NodeConfig> configs)
    {
        Configs = configs;
        _nodes = new NodeProcess?[configs.Count];
        _incarnations = new int[configs.Count];
    }

    public IReadOnlyList<NodeConfig> Configs { get; }

    public int Count => Configs.Count;

    /// <summary>
    /// Configs for <paramref name="count"/> nodes from <paramref name="template"/> (its ports and seeds are replaced).
    /// Node 0 is the first seed: started first, it forms the cluster; restarted, it joins the others through them.
    /// </summary>
    public static NodeCluster Create(int count, NodeConfig template)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var used = new HashSet<int>();
        int Port()
        {
            while (true)
            {
                var port = NodeProcess.FreeTcpPort();
                if (used.Add(port))
                {
                    return port;
                }
            }
        }

        var configs = Enumerable.Range(0, count).Select(_ => template with { ClusterPort = Port(), AdminPort = Port() }).ToArray();
        var seeds = configs.Select(c => c.Address).ToArray();
        return new NodeCluster(configs.Select(c => c with { SeedNodes = seeds }).ToArray());
    }

    /// <summary>The current incarnation of node i (running, stopped or exited).</summary>
    public NodeProcess this[int index] => _nodes[index] ?? throw new InvalidOperationException($"node {index} was never started");

    /// <summary>Node i's cluster address (akka.tcp://…@127.0.0.1:PORT), the same across incarnations.</summary>
    public string Address(int index) => Configs[index].Address;

    /// <summary>Indexes of the nodes whose current incarnation runs and is not frozen.</summary>
    public IReadOnlyList<int> Running =>
        Enumerable.Range(0, Count).Where(i => _nodes[i] is { HasExited: false, IsStopped: false }).ToArray();

    /// <summary>Starts a new incarnation of node i (the previous one must have exited).</summary>
    public NodeProcess Start(int index, IReadOnlyDictionary<string, string?>? environment = null)
    {
        if (_nodes[index] is { } previous)
        {
            if (!previous.HasExited)
            {
                throw new InvalidOperationException($"{previous.Name} still runs");
            }

            _retired.Add(previous);
        }

        var incarnation = ++_incarnations[index];
        var node = Configs[index].Run(incarnation == 1 ? $"node-{index}" : $"node-{index}#{incarnation}", environment);
        _nodes[index] = node;
        return node;
    }

    /// <summary>Starts node i and waits until it is ready (/health/ready = 200, i.e. member Up).</summary>
    public async Task<NodeProcess> StartReadyAsync(int index, TimeSpan timeout)
    {
        var node = Start(index);
        await node.WaitUntilReadyAsync(timeout);
        return node;
    }

    /// <summary>Partition entity ids hosted by each running node now (/status/partitions).</summary>
    public async Task<IReadOnlyDictionary<int, IReadOnlyList<string>>> HostedAsync()
    {
        var running = Running;
        var hosted = await Task.WhenAll(running.Select(async i => (await _nodes[i]!.PartitionsAsync()).Select(p => p.EntityId).ToArray()));
        return running.Select((index, n) => (index, hosted[n])).ToDictionary(x => x.index, x => (IReadOnlyList<string>)x.Item2);
    }

    /// <summary>
    /// Partitions per running node when every one of <paramref name="expected"/> is hosted exactly once; null
    /// while some are missing or shown twice (mid hand-off).
    /// </summary>
    public async Task<IReadOnlyDictionary<int, int>?> SpreadAsync(IReadOnlySet<string> expected)
    {
        var hosted = await HostedAsync();
        var all = hosted.Values.SelectMany(h => h).ToArray();
        return all.Length == expected.Count && expected.SetEquals(all)
            ? hosted.ToDictionary(h => h.Key, h => h.Value.Count)
            : null;
    }

    /// <summary>
    /// Waits (at most <paramref name="bound"/>) until every running node hosts its share ±1 of
    /// <paramref name="expected"/>; returns the time it took (null when not reached) and the last spread seen.
    /// </summary>
    public async Task<(TimeSpan? Elapsed, string Last)> WaitForEvenSpreadAsync(IReadOnlySet<string> expected, TimeSpan bound)
    {
        var clock = Stopwatch.StartNew();
        var last = "";
        while (true)
        {
            var spread = await SpreadAsync(expected);
            var hosted = spread ?? (await HostedAsync()).ToDictionary(h => h.Key, h => h.Value.Count);
            last = string.Join(" / ", hosted.OrderBy(h => h.Key).Select(h => $"node-{h.Key}: {h.Value}"))
                + (spread is null ? $" (not all {expected.Count} hosted once)" : "");
            if (spread is { Count: > 0 } && spread.Values.Max() - spread.Values.Min() <= 1 && spread.Count == Running.Count)
            {
                return (clock.Elapsed, last);
            }

            if (clock.Elapsed > bound)
            {
                return (null, last);
            }

            await Task.Delay(200);
        }
    }

    /// <summary>Members (address → status) as node i sees them; empty while it does not answer.</summary>
    public Task<IReadOnlyDictionary<string, string>> MembersSeenByAsync(int index) => this[index].ClusterMembersAsync();

    /// <summary>Waits (at most <paramref name="bound"/>) until every running node stopped listing node i as a member; returns the time it
    /// took or null.</summary>
    public async Task<TimeSpan?> WaitUntilRemovedAsync(int index, TimeSpan bound)
    {
        var clock = Stopwatch.StartNew();
        var address = Address(index);
        while (clock.Elapsed <= bound)
        {
            var others = Running.Where(i => i != index).ToArray();
            var views = await Task.WhenAll(others.Select(MembersSeenByAsync));
            if (others.Length > 0 && views.All(v => v.Count > 0 && !v.ContainsKey(address)))
            {
                return clock.Elapsed;
            }

            await Task.Delay(200);
        }

        return null;
    }

    /// <summary>The last lines of every incarnation, for failure output.</summary>
    public string Tails(int lines = 60) =>
        string.Join('\n', _retired.Concat(_nodes.OfType<NodeProcess>()).Select(n => n.Tail(lines)));

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes.OfType<NodeProcess>().Concat(_retired))
        {
            await node.DisposeAsync();
        }

        // Opt-in, for studying a run: every incarnation's whole output, one file each.
        if (Environment.GetEnvironmentVariable("CENTRIFUGO_ACTORS_NODE_LOGS") is { Length: > 0 } directory)
        {
            Directory.CreateDirectory(directory);
            foreach (var node in _retired.Concat(_nodes.OfType<NodeProcess>()))
            {
                await File.WriteAllTextAsync(Path.Combine(directory, node.Name.Replace('#', '.') + ".log"), node.Output);
            }
        }
    }

    /// <summary>True when the admin endpoint of node i answers 200 on /health/ready.</summary>
    public async Task<bool> IsReadyAsync(int index) => await this[index].GetAsync("/health/ready") is { Status: HttpStatusCode.OK };
}
