using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Centrifugo.Actors.Configuration;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// Group members this node joined to their consumer groups ahead of the singleton (<see cref="KafkaStandbyMember"/>),
/// waiting for the singleton to start here and take them over. Thread-safe: the standby actor adds and releases, the
/// singleton (another actor) takes.
/// </summary>
internal sealed class KafkaStandbyMembers
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, KafkaGroupMember> _members = new(StringComparer.Ordinal);

    public bool IsEmpty
    {
        get
        {
            lock (_gate)
            {
                return _members.Count == 0;
            }
        }
    }

    public bool TryAdd(string consumer, KafkaGroupMember member)
    {
        lock (_gate)
        {
            return _members.TryAdd(consumer, member);
        }
    }

    /// <summary>The consumer's standby member, now the caller's (null when there is none).</summary>
    public KafkaGroupMember? Take(string consumer)
    {
        lock (_gate)
        {
            return _members.Remove(consumer, out var member) ? member : null;
        }
    }

    public IReadOnlyList<(string Consumer, KafkaGroupMember Member)> TakeAll()
    {
        lock (_gate)
        {
            var all = _members.Select(m => (m.Key, m.Value)).ToArray();
            _members.Clear();
            return all;
        }
    }
}

/// <summary>One kafka consumer as the standby actor needs it.</summary>
internal sealed record KafkaStandbyConsumer(string Consumer, KafkaConsumerOptions Options, KafkaGroupMemberSettings Settings, Action<Task> TrackLeave);

/// <summary>
/// Joins this node's group members to their consumer groups as soon as the node hosting the singleton members (the
/// oldest) has been unreachable for <c>joinAfter</c>, when this node is next in line to host them. After a crash of the
/// oldest node the group then re-forms while the cluster is still deciding to down it, instead of only after the
/// downing (a real broker completes the rebalance when the dead member's session expires; librdkafka's mock cluster
/// re-forms a group <c>session timeout − 1 s</c> after the first membership change): the singleton that starts here
/// after the downing takes the standby over (<see cref="KafkaGroupMember.Adopt"/>), often already assigned.
/// The standby grants nothing (no entity can reach it) and commits nothing. When the oldest node comes back (a stall,
/// not a crash), or another node ends up hosting the singleton, or nobody takes the standby over within
/// <see cref="AdoptionBudget"/>, it leaves its group again: the price of a false alarm is a rebalance there and back,
/// during which the partitions the standby was assigned pause (docs/kafka.md, "Standby member").
/// </summary>
internal sealed class KafkaStandbyMember : ReceiveActor, IWithTimers
{
    public const string Name = "kafka-standby-member";
    private static readonly TimeSpan CheckInterval = TimeSpan.FromMilliseconds(250);
    /// <summary>How long a standby waits for the singleton to start here and take it over.</summary>
    internal static readonly TimeSpan AdoptionBudget = TimeSpan.FromSeconds(30);

    private readonly KafkaStandbyMembers _standbys;
    private readonly IReadOnlyList<KafkaStandbyConsumer> _consumers;
    private readonly TimeSpan _joinAfter;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly Cluster _cluster;
    private UniqueAddress? _candidate;
    private long _candidateSince;
    private UniqueAddress? _watched;
    private long _joinedAt;

    public ITimerScheduler Timers { get; set; } = null!;

    public KafkaStandbyMember(KafkaStandbyMembers standbys, IReadOnlyList<KafkaStandbyConsumer> consumers, TimeSpan joinAfter, ILoggerFactory loggerFactory)
    {
        _standbys = standbys;
        _consumers = consumers;
        _joinAfter = joinAfter;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<KafkaStandbyMember>();
        _cluster = Cluster.Get(Context.System);
        Receive<Check>(_ => OnCheck());
    }

    public static Props Props(KafkaStandbyMembers standbys, IReadOnlyList<KafkaStandbyConsumer> consumers, TimeSpan joinAfter, ILoggerFactory loggerFactory) =>
        Akka.Actor.Props.Create(() => new KafkaStandbyMember(standbys, consumers, joinAfter, loggerFactory));

    protected override void PreStart() => Timers.StartPeriodicTimer(Check.Instance, Check.Instance, CheckInterval);

    protected override void PostStop() => Release("this node stops");

    private void OnCheck()
    {
        var state = _cluster.State;
        var self = _cluster.SelfMember;
        var now = Stopwatch.GetTimestamp();
        if (_watched is null)
        {
            var oldest = NextInLine(state, self);
            if (oldest is null)
            {
                _candidate = null;
            }
            else if (!oldest.UniqueAddress.Equals(_candidate))
            {
                (_candidate, _candidateSince) = (oldest.UniqueAddress, now);
            }
            else if (Stopwatch.GetElapsedTime(_candidateSince, now) >= _joinAfter)
            {
                Join(oldest, Stopwatch.GetElapsedTime(_candidateSince, now));
            }
            return;
        }

        if (_standbys.IsEmpty)
        {
            // Taken over by the singleton(s) that started here (or released): nothing left to watch.
            (_watched, _candidate) = (null, null);
            return;
        }

        var watched = state.Members.FirstOrDefault(m => m.UniqueAddress.Equals(_watched));
        var oldestNow = Oldest(state);
        string? reason = null;
        if (watched is { Status: MemberStatus.Up or MemberStatus.Leaving } && !state.Unreachable.Contains(watched))
        {
            reason = $"{watched.Address} is reachable again";
        }
        else if (watched is null && oldestNow is not null && !oldestNow.UniqueAddress.Equals(self.UniqueAddress))
        {
            reason = $"{oldestNow.Address} hosts the group members now";
        }
        else if (KafkaMemberFence.IsFenced(state, self))
        {
            reason = "this node sees no majority of the cluster";
        }
        else if (Stopwatch.GetElapsedTime(_joinedAt, now) > AdoptionBudget)
        {
            reason = $"no group member took it over within {AdoptionBudget.TotalSeconds:0} s";
        }

        if (reason is not null)
        {
            Release(reason);
        }
    }

    /// <summary>
    /// The oldest node (where the singletons run) when it is unreachable, this node is next in line for the singletons,
    /// and this node's side of the cluster keeps the majority; else null.
    /// </summary>
    private static Member? NextInLine(ClusterEvent.CurrentClusterState state, Member self)
    {
        var byAge = ByAge(state).Take(2).ToArray();
        return byAge.Length == 2 && byAge[1].UniqueAddress.Equals(self.UniqueAddress) && state.Unreachable.Contains(byAge[0])
               && !KafkaMemberFence.IsFenced(state, self)
            ? byAge[0]
            : null;
    }

    private static Member? Oldest(ClusterEvent.CurrentClusterState state) => ByAge(state).FirstOrDefault();

    /// <summary>The members that can host singletons, oldest first (the order the singleton managers use).</summary>
    private static IEnumerable<Member> ByAge(ClusterEvent.CurrentClusterState state) => state.Members
        .Where(m => m.Status is MemberStatus.Up or MemberStatus.Leaving)
        .OrderBy(m => m, Member.AgeOrdering);

    private void Join(Member oldest, TimeSpan unreachableFor)
    {
        _watched = oldest.UniqueAddress;
        _joinedAt = Stopwatch.GetTimestamp();
        foreach (var c in _consumers)
        {
            try
            {
                // Nobody can reach a standby: it has no holders to tell, and stays out of the group after a freeze of
                // this process until the singleton takes it over and asks the cluster (KafkaGroupMemberActor).
                var member = new KafkaGroupMember(c.Consumer, c.Options, c.Settings, _loggerFactory,
                    static (_, _, _, _) => { }, authorityFrom: null, stayedOut: static _ => { });
                if (!_standbys.TryAdd(c.Consumer, member))
                {
                    c.TrackLeave(member.DisposeAsync().AsTask());
                    continue;
                }
                KafkaStandbyLog.Joined(_logger, c.Consumer, oldest.Address.ToString(), (long)unreachableFor.TotalMilliseconds);
            }
            catch (Exception e) when (e is Confluent.Kafka.KafkaException or ArgumentException or InvalidOperationException)
            {
                KafkaStandbyLog.JoinFailed(_logger, c.Consumer, e.Message);
            }
        }
    }

    private void Release(string reason)
    {
        foreach (var (consumer, member) in _standbys.TakeAll())
        {
            KafkaStandbyLog.Released(_logger, consumer, reason);
            _consumers.FirstOrDefault(c => c.Consumer == consumer)?.TrackLeave(member.DisposeAsync().AsTask());
        }
        (_watched, _candidate) = (null, null);
    }

    private sealed class Check
    {
        public static readonly Check Instance = new();
    }
}

internal static partial class KafkaStandbyLog
{
    [LoggerMessage(4070, LogLevel.Information,
        "Kafka consumer {Consumer}: joined a standby member to the group: {Oldest}, which hosts the group member, has been unreachable for {UnreachableMs} ms and this node is next in line")]
    public static partial void Joined(ILogger logger, string consumer, string oldest, long unreachableMs);

    [LoggerMessage(4071, LogLevel.Information, "Kafka consumer {Consumer}: the standby member leaves the group: {Reason}")]
    public static partial void Released(ILogger logger, string consumer, string reason);

    [LoggerMessage(4072, LogLevel.Warning, "Kafka consumer {Consumer}: could not start a standby member: {Reason}")]
    public static partial void JoinFailed(ILogger logger, string consumer, string reason);
}
