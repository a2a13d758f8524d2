using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Cluster.Sharding.External;

namespace Centrifugo.Actors.Sharding;

/// <summary>
/// Where partitions go, as a pure function of the current placement (shard id = partition entity id) and of which
/// nodes know which consumer (nodes run different configurations during a rolling change). Goals, in order: every
/// partition on a node that knows its consumer (when one does); every consumer's partitions spread ±1 over the nodes
/// that know it; the nodes' totals ±1 as far as that allows; no partition moved that does not have to move.
/// </summary>
internal static class PartitionSpread
{
    /// <summary>
    /// The cluster role of a node whose configuration has the consumer <paramref name="consumer"/> (<see cref="ConsumerOf"/>),
    /// e.g. "partitions-pg-orders" (HOCON takes no ':' unquoted; consumer names have no '-').
    /// </summary>
    public static string RoleOf(string consumer) => "partitions-" + consumer.Replace(':', '-');

    /// <summary>The group a partition is balanced within: "pg:&lt;consumer&gt;" or "kafka:&lt;consumer&gt;"
    /// (<see cref="Partitions.PartitionEntityId.ConsumerKey"/>).</summary>
    public static string ConsumerOf(string shardId) => Partitions.PartitionEntityId.ConsumerKey(shardId);

    /// <summary>
    /// The index of the node that should take <paramref name="shardId"/>: the fewest partitions of the same consumer,
    /// then the fewest in total, then the lowest index (deterministic).
    /// </summary>
    public static int Allocate(IReadOnlyList<IReadOnlyCollection<string>> nodes, string shardId)
    {
        ArgumentOutOfRangeException.ThrowIfZero(nodes.Count);
        var consumer = ConsumerOf(shardId);
        var best = 0;
        (int Same, int Total) bestKey = (int.MaxValue, int.MaxValue);
        for (var i = 0; i < nodes.Count; i++)
        {
            var key = (nodes[i].Count(s => ConsumerOf(s) == consumer), nodes[i].Count);
            if (key.CompareTo(bestKey) < 0)
            {
                (best, bestKey) = (i, key);
            }
        }
        return best;
    }

    /// <summary>
    /// The partitions to move, and the index of the node each goes to, so that every consumer is spread ±1 over
    /// <paramref name="nodes"/> and then the totals are ±1 (a move from the fullest to the emptiest node of a consumer
    /// that has more on the first keeps that consumer ±1, and when the totals differ such a consumer always exists).
    /// Each move goes from a node with the most to one with the fewest, so no partition moves twice or without need.
    /// </summary>
    /// <param name="knows">Whether node i knows consumer c (<see cref="ConsumerOf"/>); null: every node knows every consumer.</param>
    public static IReadOnlyList<(string Shard, int To)> Rebalance(
        IReadOnlyList<IReadOnlyCollection<string>> nodes, Func<int, string, bool>? knows = null)
    {
        if (nodes.Count < 2)
        {
            return [];
        }
        knows ??= (_, _) => true;

        // Working copy: per node, per consumer, the shards (sorted, so the choice of which one moves is stable).
        var placement = nodes
            .Select(n => n.GroupBy(ConsumerOf, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => new SortedSet<string>(g, StringComparer.Ordinal), StringComparer.Ordinal))
            .ToArray();
        var consumers = placement.SelectMany(p => p.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        var moves = new List<(string Shard, int To)>();

        int Count(int node, string consumer) => placement[node].TryGetValue(consumer, out var set) ? set.Count : 0;
        int Total(int node) => placement[node].Values.Sum(s => s.Count);

        void Move(int from, int to, string consumer)
        {
            var set = placement[from][consumer];
            var shard = set.Max!;
            set.Remove(shard);
            if (!placement[to].TryGetValue(consumer, out var target))
            {
                placement[to][consumer] = target = new SortedSet<string>(StringComparer.Ordinal);
            }
            target.Add(shard);
            // A partition moved twice in the plan (possible only in theory) goes straight to its last target.
            moves.RemoveAll(m => m.Shard == shard);
            moves.Add((shard, to));
        }

        // 0. Partitions on a node that does not know their consumer go to the node that knows it with the fewest of it.
        foreach (var consumer in consumers)
        {
            var knowing = Enumerable.Range(0, nodes.Count).Where(n => knows(n, consumer)).ToArray();
            if (knowing.Length == 0)
            {
                continue;
            }
            foreach (var from in Enumerable.Range(0, nodes.Count).Where(n => !knows(n, consumer)))
            {
                while (Count(from, consumer) > 0)
                {
                    Move(from, knowing.OrderBy(n => Count(n, consumer)).ThenBy(Total).First(), consumer);
                }
            }
        }

        // 1. Each consumer ±1 over the nodes that know it (from the most loaded to the least, ties broken by total load).
        foreach (var consumer in consumers)
        {
            var knowing = Enumerable.Range(0, nodes.Count).Where(n => knows(n, consumer)).ToArray();
            if (knowing.Length == 0)
            {
                continue;
            }
            while (true)
            {
                var order = knowing.OrderBy(n => Count(n, consumer)).ThenBy(Total).ToArray();
                var (min, max) = (order[0], order[^1]);
                if (Count(max, consumer) - Count(min, consumer) <= 1)
                {
                    break;
                }
                // The source among the most loaded for this consumer: the one with the highest total.
                max = order.Where(n => Count(n, consumer) == Count(order[^1], consumer)).OrderBy(Total).Last();
                Move(max, min, consumer);
            }
        }

        // 2. Totals ±1, moving only a partition of a consumer that the emptier node knows and that has one more on the
        //    fuller node than on the emptier one (so that consumer stays ±1).
        for (var guard = 0; guard < 100_000; guard++)
        {
            var order = Enumerable.Range(0, nodes.Count).OrderBy(Total).ToArray();
            var (min, max) = (order[0], order[^1]);
            if (Total(max) - Total(min) <= 1)
            {
                break;
            }
            var consumer = consumers.FirstOrDefault(c => knows(min, c) && knows(max, c) && Count(max, c) > Count(min, c));
            if (consumer is null)
            {
                break;
            }
            Move(max, min, consumer);
        }

        return moves;
    }
}

/// <summary>
/// The shard allocation strategy of the partition region. Kafka partitions go where their consumer group assigned them:
/// Akka's <see cref="ExternalShardAllocationStrategy"/>, told by each node's <see cref="Kafka.KafkaPlacement"/>.
/// Every other partition: <see cref="PartitionSpread"/> over the regions of members that are Up (a leaving node gets nothing new) and know
/// the partition's consumer (their role <see cref="PartitionSpread.RoleOf"/>; when no member knows it, any: the partition waits there
/// idle). Rebalances only while the membership is settled (nobody joining or unreachable) and no earlier round is still handing partitions
/// off, so rounds never fight each other.
/// </summary>
internal sealed class PartitionAllocationStrategy(string typeName) : IActorSystemDependentAllocationStrategy
{
    private readonly string _typeName = typeName;
    private ExternalShardAllocationStrategy? _kafka;
    private readonly PlannedMoves _planned = new(TimeSpan.FromSeconds(60));
    private readonly RegionRegistration _registration = new(TimeSpan.FromSeconds(10));
    private Cluster? _cluster;

    public void Start(ActorSystem system)
    {
        _cluster = Cluster.Get(system);
        if (_kafka is null)
        {
            // Started once per node: the coordinator may start again here after a failure.
            _kafka = new ExternalShardAllocationStrategy(system, _typeName);
            _kafka.Start();
        }
    }

    /// <summary>Kafka partitions go where their consumer group assigned them; the rest is ours to spread.</summary>
    private static bool IsKafka(string shardId) =>
        shardId.StartsWith(Partitions.PartitionEntityId.KafkaPrefix + ":", StringComparison.Ordinal);

    private static IImmutableDictionary<IActorRef, IImmutableList<string>> Only(
        IImmutableDictionary<IActorRef, IImmutableList<string>> allocations, bool kafka) =>
        allocations.ToImmutableDictionary(a => a.Key,
            a => (IImmutableList<string>)a.Value.Where(s => IsKafka(s) == kafka).ToImmutableList());

    public Task<IActorRef> AllocateShard(
        IActorRef requester, string shardId, IImmutableDictionary<IActorRef, IImmutableList<string>> currentShardAllocations)
    {
        if (IsKafka(shardId))
        {
            return _kafka is { } kafka
                ? kafka.AllocateShard(requester, shardId, Only(currentShardAllocations, kafka: true)) : Task.FromResult(requester);
        }
        currentShardAllocations = Only(currentShardAllocations, kafka: false);
        var regions = Eligible(currentShardAllocations);
        var consumer = PartitionSpread.ConsumerOf(shardId);
        if (regions.Where(r => Knows(r.Key, consumer)).ToList() is { Count: > 0 } knowing)
        {
            regions = knowing;
        }
        if (regions.Count == 0)
        {
            // Only leaving or unknown members: any region beats none (the coordinator retries otherwise).
            regions = currentShardAllocations.OrderBy(r => r.Value.Count).Take(1).ToList();
        }
        if (regions.Count == 0)
        {
            return Task.FromResult(requester);
        }
        // A partition moved by the last rebalance goes where the plan put it (if that node is still eligible), so the
        // order in which hand-offs complete cannot change the outcome.
        if (_planned.TakeTarget(shardId) is { } target && regions.FindIndex(r => AddressOf(r.Key) == target) is var planned and >= 0)
        {
            return Task.FromResult(regions[planned].Key);
        }
        var index = PartitionSpread.Allocate(regions.Select(r => (IReadOnlyCollection<string>)r.Value).ToArray(), shardId);
        return Task.FromResult(regions[index].Key);
    }

    public async Task<IImmutableSet<string>> Rebalance(
        IImmutableDictionary<IActorRef, IImmutableList<string>> currentShardAllocations, IImmutableSet<string> rebalanceInProgress)
    {
        var kafka = _kafka is { } external
            ? (await external.Rebalance(Only(currentShardAllocations, kafka: true), rebalanceInProgress))
                .Where(s => !rebalanceInProgress.Contains(s))
            : [];
        var spread = SpreadRebalance(
            Only(currentShardAllocations, kafka: false), rebalanceInProgress.Where(s => !IsKafka(s)).ToImmutableHashSet());
        return spread.Union(kafka);
    }

    private IImmutableSet<string> SpreadRebalance(
        IImmutableDictionary<IActorRef, IImmutableList<string>> currentShardAllocations, IImmutableSet<string> rebalanceInProgress)
    {
        if (rebalanceInProgress.Count > 0 || !Settled()
            || _planned.AwaitingPlacement(currentShardAllocations.Values.SelectMany(s => s), DateTime.UtcNow))
        {
            return ImmutableHashSet<string>.Empty;
        }
        var regions = Eligible(currentShardAllocations);
        if (_cluster is { } cluster && !_registration.AllRegistered(
                cluster.State.Members.Where(m => m.Status == MemberStatus.Up).Select(m => m.Address),
                regions.Select(r => AddressOf(r.Key)), DateTime.UtcNow))
        {
            // A member that is Up registers its region a moment later: planning without it would move partitions
            // twice (to the nodes already registered, then again to it).
            return ImmutableHashSet<string>.Empty;
        }
        var moves = PartitionSpread.Rebalance(regions.Select(r => (IReadOnlyCollection<string>)r.Value).ToArray(),
            (node, consumer) => Knows(regions[node].Key, consumer));
        _planned.Plan(moves.Select(m => (m.Shard, AddressOf(regions[m.To].Key))), DateTime.UtcNow);
        return moves.Select(m => m.Shard).ToImmutableHashSet(StringComparer.Ordinal);
    }

    private bool Settled()
    {
        if (_cluster is not { } cluster)
        {
            return false;
        }
        var state = cluster.State;
        return state.Unreachable.Count == 0
            && state.Members.All(m => m.Status is MemberStatus.Up or MemberStatus.Leaving or MemberStatus.Exiting);
    }

    /// <summary>Regions whose member is Up, ordered by address so that ties resolve the same way on every coordinator.</summary>
    private List<KeyValuePair<IActorRef, IImmutableList<string>>> Eligible(
        IImmutableDictionary<IActorRef, IImmutableList<string>> allocations)
    {
        if (_cluster is not { } cluster)
        {
            return allocations.ToList();
        }
        var up = cluster.State.Members.Where(m => m.Status == MemberStatus.Up).Select(m => m.Address).ToHashSet();
        return allocations
            .Select(r => (Region: r, Address: AddressOf(r.Key)))
            .Where(r => up.Contains(r.Address))
            .OrderBy(r => r.Address.ToString(), StringComparer.Ordinal)
            .Select(r => r.Region)
            .ToList();
    }

    private bool Knows(IActorRef region, string consumer)
    {
        if (_cluster is not { } cluster)
        {
            return true;
        }
        var address = AddressOf(region);
        return cluster.State.Members.FirstOrDefault(m => m.Address == address) is not { } member
            || member.HasRole(PartitionSpread.RoleOf(consumer));
    }

    private Address AddressOf(IActorRef region) =>
        region.Path.Address.HasLocalScope && _cluster is { } cluster ? cluster.SelfAddress : region.Path.Address;
}

/// <summary>
/// Whether every member that is Up has registered its shard region with the coordinator, so that a rebalance round
/// plans for all of them. A member that is Up without a region for longer than <c>wait</c> (its sharding failed to
/// start, or it runs no partition region) is planned without, so it cannot stop rebalancing for good.
/// </summary>
internal sealed class RegionRegistration(TimeSpan wait)
{
    private readonly Dictionary<Address, DateTime> _missingSince = [];

    public bool AllRegistered(IEnumerable<Address> upMembers, IEnumerable<Address> registered, DateTime now)
    {
        var missing = upMembers.Except(registered).ToHashSet();
        foreach (var gone in _missingSince.Keys.Where(a => !missing.Contains(a)).ToList())
        {
            _missingSince.Remove(gone);
        }
        var ready = true;
        foreach (var address in missing)
        {
            if (!_missingSince.TryGetValue(address, out var since))
            {
                _missingSince[address] = since = now;
            }
            ready &= now - since >= wait;
        }
        return ready;
    }
}

/// <summary>
/// The moves of the last rebalance round, until the coordinator has placed each moved partition again. The coordinator
/// re-homes handed-off shards one state write at a time (tens of ms each with remembered entities), so a rebalance tick
/// can come after every hand-off finished but before all of them were placed: a plan made then counts those partitions
/// nowhere and moves more than needed (measured: 1,000 partitions over 3 nodes took rounds of 666, 222, 74 and 24
/// moves instead of one). A round is therefore planned only once every move of the last one is placed (or its
/// hand-off failed and it stayed where it was), or after <c>bound</c>.
/// </summary>
internal sealed class PlannedMoves(TimeSpan bound)
{
    private readonly Dictionary<string, Address> _targets = new(StringComparer.Ordinal);
    private DateTime _plannedAt;

    public int Count => _targets.Count;

    public void Plan(IEnumerable<(string Shard, Address To)> moves, DateTime now)
    {
        _targets.Clear();
        foreach (var (shard, to) in moves)
        {
            _targets[shard] = to;
        }
        _plannedAt = now;
    }

    /// <summary>Where the last round meant <paramref name="shard"/> to go (once: it is placed now).</summary>
    public Address? TakeTarget(string shard) => _targets.Remove(shard, out var target) ? target : null;

    /// <summary>
    /// Whether moved partitions still wait to be placed. <paramref name="allocated"/>: every shard the coordinator has
    /// a home for; a planned shard among them was placed without this strategy or never left (failed hand-off).
    /// </summary>
    public bool AwaitingPlacement(IEnumerable<string> allocated, DateTime now)
    {
        if (_targets.Count == 0)
        {
            return false;
        }
        foreach (var shard in allocated)
        {
            _targets.Remove(shard);
        }
        if (_targets.Count > 0 && now - _plannedAt >= bound)
        {
            _targets.Clear();
        }
        return _targets.Count > 0;
    }
}
