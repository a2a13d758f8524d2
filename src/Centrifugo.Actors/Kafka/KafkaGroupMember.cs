using System.Diagnostics;
using Centrifugo.Actors.Configuration;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>Timings of the group member and its grants; the defaults are for production, tests shorten them.</summary>
internal sealed record KafkaGroupMemberSettings
{
    /// <summary>librdkafka session.timeout.ms of the member: how long the group keeps a vanished member's partitions.</summary>
    public TimeSpan SessionTimeout { get; init; } = TimeSpan.FromSeconds(6);
    /// <summary>
    /// How long a grant stays valid after the request that obtained or renewed it was sent. Must stay well below
    /// <see cref="SessionTimeout"/> (another member of the group gets a partition at the earliest a session timeout after
    /// this member vanished, by then every grant it gave has expired) and below the cluster's downing time.
    /// </summary>
    public TimeSpan GrantTtl { get; init; } = TimeSpan.FromSeconds(3);
    /// <summary>How often a holder renews its grant.</summary>
    public TimeSpan RenewInterval { get; init; } = TimeSpan.FromMilliseconds(750);
    /// <summary>A gap this long in the member's own clock ticks means the process was frozen: all grants are dropped.</summary>
    public TimeSpan FreezeThreshold { get; init; } = TimeSpan.FromMilliseconds(1500);
    /// <summary>Longest a revocation waits for the holders of revoked partitions to finish and release.</summary>
    public TimeSpan RevokeTimeout { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>Longest one commit (or committed-offset lookup) through the member may take.</summary>
    public TimeSpan CommitTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>How often the member refreshes topic metadata (partitions added later are assigned within this).</summary>
    public TimeSpan MetadataRefresh { get; init; } = TimeSpan.FromSeconds(5);

    public void Validate()
    {
        if (GrantTtl <= RenewInterval || GrantTtl >= SessionTimeout || FreezeThreshold >= GrantTtl)
        {
            throw new ArgumentException(
                $"kafka group member timings must satisfy renew interval < grant ttl < session timeout and freeze threshold < grant ttl (got {this})");
        }
    }
}

/// <summary>
/// This deployment's member of a kafka consumer's <c>consumer_group</c> (one per cluster, run by a cluster singleton):
/// a subscribed librdkafka consumer (cooperative-sticky) whose assigned partitions are the ones this deployment owns.
/// It never consumes records (everything assigned is paused at once); nodes fetch through their hub by manual
/// assignment. It fences stale owners in two ways:
/// <list type="bullet">
/// <item>Grants: an entity may deliver a partition only while it holds an unexpired grant (epoch + TTL counted from
/// the moment the entity sent its request). A partition is granted to a new epoch only after the previous grant was
/// released or expired here; grants are refused while the member may not know grants given by a previous instance
/// (the first TTL after start) or after a freeze of its own process.</item>
/// <item>Commits: every commit goes through this consumer, so the broker checks the group generation; the member
/// refuses commits from an epoch that is not the partition's current grant, for partitions it does not own, and
/// commits that would move an offset backwards.</item>
/// </list>
/// When the group revokes partitions (another deployment joined), their holders are told to stop and the revocation
/// completes only after they released (final commit done) or their grants expired. Thread-safe.
/// </summary>
internal sealed class KafkaGroupMember : IAsyncDisposable
{
    private readonly string _name;
    private readonly KafkaGroupMemberSettings _settings;
    private readonly ILogger _logger;
    private readonly IConsumer<Ignore, Ignore> _consumer;
    private Action<object, string, int, long> _revokeHolder;
    private readonly IReadOnlyList<string> _topics;
    // A monitor (not System.Threading.Lock): revocations wait on it for holders to release.
    private readonly object _gate = new();
    private IAdminClient? _admin;
    private readonly Dictionary<TopicPartition, Owned> _owned = [];
    private readonly List<TopicPartition> _toPause = [];
    private readonly SemaphoreSlim _commitOne = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _pollStopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly long _epochBase;
    private long _epochCounter;
    private long _authorityFrom; // Stopwatch ticks: no fresh grant before this
    private long _lastTick;
    private long _freezeSeenAt; // Stopwatch ticks of the last freeze CheckFrozen saw; 0 = none
    private long _freezeGap;
    private Action<TimeSpan>? _stayedOut;
    private volatile bool _outOfGroup;
    private int _stayingOut;
    private long _sessionLostInFreeze; // the gap (Stopwatch ticks) of a freeze longer than the session, not yet acted on
    private volatile bool _closing;
    private bool _assignedOnce;
    private int _disposed;

    /// <param name="authorityFrom">
    /// Stopwatch ticks from which fresh grants may be given; default one grant TTL after now (a previous instance's
    /// grants may still run). <see cref="PreviousMemberWatch"/> computes an earlier moment when the previous instance's
    /// node was downed.
    /// </param>
    /// <param name="stayedOut">
    /// Called (with the freeze's length) when the group dropped this member while its process was frozen and the member
    /// therefore stayed out of the group instead of rejoining (see <see cref="OnLost"/>); the owner calls
    /// <see cref="Rejoin"/> once its cluster confirmed that this node is still a member.
    /// </param>
    public KafkaGroupMember(string consumerName, KafkaConsumerOptions options, KafkaGroupMemberSettings settings,
        ILoggerFactory loggerFactory, Action<object, string, int, long> revokeHolder, long? authorityFrom = null,
        Action<TimeSpan>? stayedOut = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        settings.Validate();
        _stayedOut = stayedOut;
        _name = consumerName;
        _settings = settings;
        _revokeHolder = revokeHolder;
        _topics = options.Topics;
        _logger = loggerFactory.CreateLogger<KafkaGroupMember>();
        // Epochs of this instance sort after those of earlier instances (wall clock at start, ms) and are unique.
        _epochBase = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() << 20;
        var started = Stopwatch.GetTimestamp();
        _authorityFrom = Math.Min(authorityFrom ?? long.MaxValue, started + Ticks(settings.GrantTtl));
        _lastTick = started;

        var config = KafkaClientConfigBuilder.Consumer(options);
        config.ClientId = KafkaClientConfigBuilder.ClientId + "-member";
        config.PartitionAssignmentStrategy = PartitionAssignmentStrategy.CooperativeSticky;
        config.SessionTimeoutMs = (int)settings.SessionTimeout.TotalMilliseconds;
        config.HeartbeatIntervalMs = Math.Max(100, (int)settings.SessionTimeout.TotalMilliseconds / 5);
        config.TopicMetadataRefreshIntervalMs = (int)settings.MetadataRefresh.TotalMilliseconds;
        // It never reads records: keep whatever librdkafka prefetches before the pause small.
        config.QueuedMaxMessagesKbytes = 64;
        _consumer = new ConsumerBuilder<Ignore, Ignore>(config)
            .SetPartitionsAssignedHandler((_, parts) => OnAssigned(parts))
            .SetPartitionsRevokedHandler((_, parts) => OnRevoked(parts.Select(p => p.TopicPartition).ToList()))
            .SetPartitionsLostHandler((_, parts) => OnLost(parts.Select(p => p.TopicPartition).ToList(), "lost by the group"))
            .SetErrorHandler((_, e) => KafkaLog.ClientError(_logger, _name, e.Code, e.Reason))
            .SetLogHandler((_, m) => KafkaLog.Librdkafka(_logger, KafkaLog.FromSyslog(m.Level), _name, m.Facility, m.Message))
            .Build();
        _admin = new DependentAdminClientBuilder(_consumer.Handle).Build();
        _consumer.Subscribe(options.Topics);
        new Thread(PollLoop) { IsBackground = true, Name = $"kafka-member-{consumerName}" }.Start();
        new Thread(TickLoop) { IsBackground = true, Name = $"kafka-member-tick-{consumerName}" }.Start();
        KafkaMemberLog.Started(_logger, _name, options.ConsumerGroup, (int)settings.SessionTimeout.TotalMilliseconds, (int)settings.GrantTtl.TotalMilliseconds,
            (long)Duration(Math.Max(0, _authorityFrom - started)).TotalMilliseconds);
    }

    public KafkaGroupMemberSettings Settings => _settings;

    /// <summary>
    /// Makes a member that joined the group ahead of its singleton (a standby, <see cref="KafkaStandbyMember"/>) the
    /// singleton's member: from now on revoked and lost grants are reported through <paramref name="revokeHolder"/>, a
    /// stay-out after a freeze through <paramref name="stayedOut"/> (called at once if the member is out of the group
    /// already), and fresh grants start at <paramref name="authorityFrom"/> (what a member starting now would use), or
    /// later after a freeze of this process. The standby never granted anything: nobody could reach it.
    /// </summary>
    public void Adopt(Action<object, string, int, long> revokeHolder, long authorityFrom, Action<TimeSpan> stayedOut)
    {
        bool outOfGroup, assigned;
        long wait;
        lock (_gate)
        {
            CheckFrozen();
            _revokeHolder = revokeHolder;
            _stayedOut = stayedOut;
            var afterFreeze = _freezeSeenAt == 0 ? 0 : _freezeSeenAt + Ticks(_settings.GrantTtl);
            _authorityFrom = Math.Max(authorityFrom, afterFreeze);
            outOfGroup = _outOfGroup;
            assigned = _assignedOnce;
            wait = Math.Max(0, _authorityFrom - Stopwatch.GetTimestamp());
        }
        KafkaMemberLog.AdoptedStandby(_logger, _name, assigned, (long)Duration(wait).TotalMilliseconds);
        if (outOfGroup)
        {
            stayedOut(TimeSpan.Zero);
        }
    }

    /// <summary>
    /// True while the member stays out of the group after a freeze: it owns nothing and grants nothing, also when a
    /// rejoin librdkafka started before the unsubscribe still hands it partitions (it leaves once that rebalance completes).
    /// </summary>
    public bool IsOutOfGroup => _outOfGroup;

    /// <summary>
    /// Joins the group again after the member stayed out of it following a freeze (<see cref="IsOutOfGroup"/>); does
    /// nothing otherwise.
    /// </summary>
    public void Rejoin()
    {
        if (!_outOfGroup || _closing || Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        KafkaMemberLog.Rejoining(_logger, _name);
        _outOfGroup = false;
        try
        {
            _consumer.Subscribe(_topics);
        }
        catch (Exception e) when (e is KafkaException or ObjectDisposedException)
        {
            // Closing meanwhile (the node is leaving): nothing to rejoin.
            KafkaLog.ClientError(_logger, _name, (e as KafkaException)?.Error.Code ?? ErrorCode.Local_State, e.Message);
        }
    }

    /// <summary>Whether the group has assigned this member anything (possibly nothing) since it started.</summary>
    public bool HasBeenAssigned
    {
        get
        {
            lock (_gate)
            {
                return _assignedOnce;
            }
        }
    }

    /// <summary>Partitions the group assigned to this member and not being revoked.</summary>
    public IReadOnlyList<KafkaOwnedPartition> OwnedPartitions()
    {
        lock (_gate)
        {
            CheckFrozen();
            if (_outOfGroup)
            {
                return [];
            }
            return _owned.Where(o => !o.Value.Revoking)
                .Select(o => new KafkaOwnedPartition(o.Key.Topic, o.Key.Partition.Value))
                .OrderBy(o => o.Topic, StringComparer.Ordinal).ThenBy(o => o.Partition).ToArray();
        }
    }

    /// <summary>Grants the partition to <paramref name="holder"/> under a new epoch, or says why not.</summary>
    public KafkaGrantReply Acquire(string topic, int partition, object holder)
    {
        var tp = new TopicPartition(topic, partition);
        lock (_gate)
        {
            CheckFrozen();
            var now = Stopwatch.GetTimestamp();
            if (!_assignedOnce)
            {
                // A fresh instance (the member just moved to another node) does not know its partitions before the
                // group's first assignment: the entity retries shortly instead of stopping until the keeper's next round.
                return Reply(tp, 0, KafkaGrantStatus.NotReady, NotReadyRetry);
            }

            if (_outOfGroup || !_owned.TryGetValue(tp, out var owned) || owned.Revoking)
            {
                return Reply(tp, 0, KafkaGrantStatus.NotOwned, TimeSpan.Zero);
            }

            if (owned.Grant is { } current && current.ExpiresAt > now)
            {
                if (Equals(current.Holder, holder))
                {
                    current.ExpiresAt = now + Ticks(_settings.GrantTtl);
                    return Reply(tp, current.Epoch, KafkaGrantStatus.Granted, TimeSpan.Zero);
                }

                return Reply(tp, 0, KafkaGrantStatus.Busy, Duration(current.ExpiresAt - now));
            }

            if (now < _authorityFrom)
            {
                return Reply(tp, 0, KafkaGrantStatus.Busy, Duration(_authorityFrom - now));
            }

            var epoch = _epochBase + Interlocked.Increment(ref _epochCounter);
            owned.Grant = new Grant(epoch, holder, now + Ticks(_settings.GrantTtl));
            KafkaMemberLog.Granted(_logger, _name, topic, partition, epoch);
            return Reply(tp, epoch, KafkaGrantStatus.Granted, TimeSpan.Zero);
        }
    }

    /// <summary>
    /// Extends a grant. A grant given by a previous member instance (this one does not know it) is adopted while no
    /// other grant exists: its holder renews only while the grant is still valid on its own clock, and the previous
    /// instance gave at most one valid grant per partition.
    /// </summary>
    public KafkaGrantReply Renew(string topic, int partition, long epoch, object holder)
    {
        var tp = new TopicPartition(topic, partition);
        lock (_gate)
        {
            CheckFrozen();
            var now = Stopwatch.GetTimestamp();
            if (_outOfGroup)
            {
                return Reply(tp, epoch, KafkaGrantStatus.Lost, TimeSpan.Zero);
            }

            if (!_owned.TryGetValue(tp, out var owned))
            {
                // Before the first assignment of a fresh instance the holder keeps its grant until it expires.
                return Reply(tp, epoch, _assignedOnce ? KafkaGrantStatus.Lost : KafkaGrantStatus.NotReady, TimeSpan.Zero);
            }

            if (owned.Grant is { } current && current.ExpiresAt > now)
            {
                if (current.Epoch != epoch)
                {
                    return Reply(tp, epoch, KafkaGrantStatus.Lost, TimeSpan.Zero);
                }

                // While the partition is being revoked a renewal never extends the grant past the revocation's
                // start + one TTL: the revocation (and so this member's rejoin) ends within a TTL even when the holder
                // cannot finish (its final commit refused while the group rebalances), instead of holding the group
                // until the revoke timeout, after which a broker may hand the partition on regardless.
                var until = now + Ticks(_settings.GrantTtl);
                if (owned.Revoking)
                {
                    until = Math.Min(until, owned.RevokeCap);
                }
                current.ExpiresAt = Math.Max(current.ExpiresAt, until);
                current.Holder = holder;
                return new KafkaGrantReply(topic, partition, epoch, KafkaGrantStatus.Granted, Duration(Math.Max(0, until - now)), TimeSpan.Zero);
            }

            if (owned.Grant is null && !owned.Revoking && (epoch >> 20) != (_epochBase >> 20) && epoch > owned.HighestAdopted)
            {
                owned.Grant = new Grant(epoch, holder, now + Ticks(_settings.GrantTtl));
                owned.HighestAdopted = epoch;
                KafkaMemberLog.Adopted(_logger, _name, topic, partition, epoch);
                return Reply(tp, epoch, KafkaGrantStatus.Granted, TimeSpan.Zero);
            }

            return Reply(tp, epoch, KafkaGrantStatus.Lost, TimeSpan.Zero);
        }
    }

    public void Release(string topic, int partition, long epoch)
    {
        lock (_gate)
        {
            if (_owned.TryGetValue(new TopicPartition(topic, partition), out var owned) && owned.Grant?.Epoch == epoch)
            {
                owned.Grant = null;
                Monitor.PulseAll(_gate);
            }
        }
    }

    /// <summary>
    /// Commits the entries whose epoch is the partition's current, unexpired grant and whose offset is ahead of the
    /// group's; one outcome per entry, in order.
    /// </summary>
    public async Task<IReadOnlyList<KafkaCommitOutcome>> CommitAsync(IReadOnlyList<KafkaCommitEntry> entries, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var outcomes = new KafkaCommitOutcome[entries.Count];
        await _commitOne.WaitAsync(cancellationToken);
        try
        {
            // librdkafka's commit and committed-offset calls block, for up to the commit timeout while the group
            // rebalances: on a thread of its own, never a thread-pool thread that actors (grant renewals) need.
            return await Task.Factory.StartNew(() => CommitBlocking(entries, outcomes), cancellationToken,
                TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        finally
        {
            _commitOne.Release();
        }
    }

    private KafkaCommitOutcome[] CommitBlocking(IReadOnlyList<KafkaCommitEntry> entries, KafkaCommitOutcome[] outcomes)
    {
        // Committed offsets not known yet (first commit since the assignment) are looked up first.
        List<TopicPartition> unknown;
        lock (_gate)
        {
            unknown = entries.Select(e => new TopicPartition(e.Topic, e.Partition)).Distinct()
                .Where(tp => _owned.TryGetValue(tp, out var o) && o.KnownCommitted is null).ToList();
        }

        if (unknown.Count > 0)
        {
            try
            {
                var found = _consumer.Committed(unknown, _settings.CommitTimeout);
                lock (_gate)
                {
                    foreach (var tpo in found)
                    {
                        if (_owned.TryGetValue(tpo.TopicPartition, out var o) && o.KnownCommitted is null)
                        {
                            o.KnownCommitted = Math.Max(-1, tpo.Offset.Value);
                        }
                    }
                }
            }
            catch (KafkaException e)
            {
                KafkaMemberLog.CommitFailed(_logger, _name, e.Error.Code, e.Error.Reason);
                Array.Fill(outcomes, KafkaCommitOutcome.Failed);
                return outcomes;
            }
        }

        var send = new List<(int Index, TopicPartitionOffset Offset)>();
        lock (_gate)
        {
            CheckFrozen();
            var now = Stopwatch.GetTimestamp();
            for (var i = 0; i < entries.Count; i++)
            {
                var e = entries[i];
                var tp = new TopicPartition(e.Topic, e.Partition);
                if (!_owned.TryGetValue(tp, out var owned))
                {
                    // A fresh instance (the member moved) knows no partition before the group's first assignment: the
                    // holder's commit is retried, as its renewal is, instead of stopping a holder it may adopt.
                    outcomes[i] = _assignedOnce ? KafkaCommitOutcome.NotOwned : KafkaCommitOutcome.Pending;
                }
                else if (owned.Grant is null && !owned.Revoking && (e.Epoch >> 20) != (_epochBase >> 20) && e.Epoch > owned.HighestAdopted)
                {
                    // A previous instance's grant this one has not adopted yet (the holder's next renewal adopts it, see
                    // Renew): retried, not refused. Nothing is committed under a grant this instance does not hold.
                    outcomes[i] = KafkaCommitOutcome.Pending;
                }
                else if (owned.Grant is not { } grant || grant.Epoch != e.Epoch || grant.ExpiresAt <= now)
                {
                    outcomes[i] = KafkaCommitOutcome.StaleEpoch;
                }
                else if (owned.KnownCommitted is not { } known || e.Offset <= known)
                {
                    outcomes[i] = owned.KnownCommitted is null ? KafkaCommitOutcome.Failed : KafkaCommitOutcome.Behind;
                }
                else
                {
                    send.Add((i, new TopicPartitionOffset(tp, e.Offset)));
                }
            }
        }

        if (send.Count == 0)
        {
            return outcomes;
        }

        try
        {
            _consumer.Commit(send.Select(s => s.Offset));
            foreach (var (i, _) in send)
            {
                outcomes[i] = KafkaCommitOutcome.Committed;
            }
        }
        catch (TopicPartitionOffsetException e)
        {
            foreach (var (i, offset) in send)
            {
                var result = e.Results.FirstOrDefault(r => r.TopicPartition == offset.TopicPartition);
                outcomes[i] = result is null || !result.Error.IsError ? KafkaCommitOutcome.Committed : Classify(result.Error.Code);
            }
        }
        catch (KafkaException e)
        {
            KafkaMemberLog.CommitFailed(_logger, _name, e.Error.Code, e.Error.Reason);
            foreach (var (i, _) in send)
            {
                outcomes[i] = Classify(e.Error.Code);
            }
        }

        lock (_gate)
        {
            foreach (var (i, offset) in send)
            {
                if (outcomes[i] == KafkaCommitOutcome.Committed && _owned.TryGetValue(offset.TopicPartition, out var owned))
                {
                    owned.KnownCommitted = Math.Max(owned.KnownCommitted ?? -1, offset.Offset.Value);
                }
            }
        }

        // A fenced commit (stale generation) changes nothing here: if the membership is really gone, librdkafka reports
        // the partitions lost (OnLost drops their grants); a commit that raced a generation bump is simply retried.
        return outcomes;
    }

    /// <summary>Whether the member had a member id when it closed (so its leave could name it); for tests.</summary>
    internal bool LeftWithMemberId { get; private set; }

    /// <summary>
    /// Before closing, waits (at most a session timeout, polling while the poll thread still serves the group) until the
    /// group gave this member its id. librdkafka's mock cluster, like brokers before Kafka 2.2 (no KIP-394), hands a
    /// joining member its id only with the join's result: a member closed while its first join is pending has nothing to
    /// leave the group with, and the group keeps it as a ghost until its session expires. The next member then waits for
    /// that session and another re-forming round: a SIGTERM of the member's node within ~5 s of the member starting
    /// there paused every partition for 14.5–14.9 s in the cluster benchmark (docs/benchmarks.md). Brokers with KIP-394
    /// answer the first JoinGroup with the id at once, so this costs nothing there.
    /// </summary>
    private async Task WaitForMemberIdAsync()
    {
        var waited = Stopwatch.StartNew();
        while (!_outOfGroup && string.IsNullOrEmpty(MemberIdOrEmpty()) && waited.Elapsed < _settings.SessionTimeout)
        {
            await Task.Delay(50);
        }
    }

    private string MemberIdOrEmpty()
    {
        try
        {
            return _consumer.MemberId ?? "";
        }
        catch (Exception e) when (e is KafkaException or ObjectDisposedException)
        {
            return "";
        }
    }

    private static KafkaCommitOutcome Classify(ErrorCode code) => code switch
    {
        ErrorCode.IllegalGeneration or ErrorCode.UnknownMemberId or ErrorCode.FencedInstanceId => KafkaCommitOutcome.Fenced,
        _ => KafkaCommitOutcome.Failed,
    };

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await WaitForMemberIdAsync();
        await _stop.CancelAsync();
        await _pollStopped.Task;
        await Task.Run(() =>
        {
            LeftWithMemberId = !string.IsNullOrEmpty(MemberIdOrEmpty());
            // Leaving the group revokes everything (OnRevoked). When this member owns every partition of its topics,
            // nobody else in the group can take them while the next instance joins, so holders keep their grants
            // (the next instance adopts them); otherwise they are stopped before the leave completes.
            _closing = true;
            try
            {
                _consumer.Close();
            }
            catch (KafkaException e)
            {
                KafkaLog.ClientError(_logger, _name, e.Error.Code, e.Error.Reason);
            }
            _admin?.Dispose();
            _admin = null;
            _consumer.Dispose();
        });
        _commitOne.Dispose();
        _stop.Dispose();
        KafkaMemberLog.Stopped(_logger, _name);
    }

    // ---- group callbacks (member poll thread) ----

    private void OnAssigned(List<TopicPartition> partitions)
    {
        lock (_gate)
        {
            _assignedOnce = true;
            foreach (var tp in partitions)
            {
                _owned[tp] = new Owned();
            }
            _toPause.AddRange(partitions);
        }
        KafkaMemberLog.Assigned(_logger, _name, partitions.Count, Describe(partitions));
    }

    private void OnRevoked(List<TopicPartition> partitions)
    {
        if (partitions.Count == 0)
        {
            return;
        }

        var waitForHolders = !_closing || !OwnsEverything();
        KafkaMemberLog.Revoking(_logger, _name, partitions.Count, Describe(partitions), waitForHolders);
        var deadline = Stopwatch.GetTimestamp() + Ticks(_settings.RevokeTimeout);
        lock (_gate)
        {
            foreach (var tp in partitions)
            {
                if (_owned.TryGetValue(tp, out var owned))
                {
                    owned.Revoking = true;
                    owned.RevokeCap = Stopwatch.GetTimestamp() + Ticks(_settings.GrantTtl);
                    if (waitForHolders && owned.Grant is { } grant)
                    {
                        _revokeHolder(grant.Holder, tp.Topic, tp.Partition.Value, grant.Epoch);
                    }
                }
            }

            while (waitForHolders)
            {
                var now = Stopwatch.GetTimestamp();
                var held = partitions.Where(tp => _owned.TryGetValue(tp, out var o) && o.Grant is { } g && g.ExpiresAt > now).ToList();
                if (held.Count == 0 || now >= deadline)
                {
                    if (held.Count > 0)
                    {
                        KafkaMemberLog.RevokeTimedOut(_logger, _name, Describe(held));
                    }
                    break;
                }

                Monitor.Wait(_gate, TimeSpan.FromMilliseconds(100));
            }

            foreach (var tp in partitions)
            {
                _owned.Remove(tp);
                _toPause.Remove(tp);
            }
        }
    }

    private void OnLost(List<TopicPartition> partitions, string reason)
    {
        TimeSpan? frozenFor;
        lock (_gate)
        {
            frozenFor = FrozenJustBefore();
            foreach (var tp in partitions)
            {
                if (_owned.Remove(tp, out var owned) && owned.Grant is { } grant)
                {
                    _revokeHolder(grant.Holder, tp.Topic, tp.Partition.Value, grant.Epoch);
                }
                _toPause.Remove(tp);
            }
            Monitor.PulseAll(_gate);
        }
        if (partitions.Count > 0)
        {
            KafkaMemberLog.Lost(_logger, _name, partitions.Count, reason);
        }

        if (frozenFor is { } gap)
        {
            // The group dropped this member while its process was frozen: its cluster may have downed this node and
            // started a member elsewhere meanwhile, and the node learns that only seconds later. librdkafka rejoins as
            // soon as this handler returns; unsubscribing before it returns makes that rejoin find no subscription
            // (librdkafka applies the unsubscribe before its next JoinGroup).
            StayOut(gap);
        }
    }

    /// <summary>
    /// Leaves the group's membership to the rest of the cluster after a freeze: unsubscribes so that librdkafka does not
    /// rejoin, until the owner calls <see cref="Rejoin"/> (its cluster confirmed that this node is still a member). A
    /// zombie member in the group takes part in the next rebalance and may be handed partitions until its node exits.
    /// Not under _gate (librdkafka's main thread serves the unsubscribe).
    /// </summary>
    private void StayOut(TimeSpan gap)
    {
        if (_closing || _stayedOut is null || Interlocked.Exchange(ref _stayingOut, 1) != 0)
        {
            return;
        }

        try
        {
            if (_outOfGroup)
            {
                return;
            }
            _outOfGroup = true;
            try
            {
                _consumer.Unsubscribe();
            }
            catch (Exception e) when (e is KafkaException or ObjectDisposedException)
            {
                KafkaLog.ClientError(_logger, _name, (e as KafkaException)?.Error.Code ?? ErrorCode.Local_State, e.Message);
            }
            KafkaMemberLog.StayedOut(_logger, _name, (long)gap.TotalMilliseconds);
            _stayedOut(gap);
        }
        finally
        {
            Volatile.Write(ref _stayingOut, 0);
        }
    }

    /// <summary>
    /// Under _gate. The freeze this process just came out of, if any: either the ticks stopped right now (the tick thread
    /// has not run since the thaw) or a freeze was seen within the last session timeout (the group drops a member a few
    /// heartbeats after the thaw at the latest).
    /// </summary>
    private TimeSpan? FrozenJustBefore()
    {
        var now = Stopwatch.GetTimestamp();
        if (now - _lastTick > Ticks(_settings.FreezeThreshold))
        {
            CheckFrozen();
        }
        return _freezeSeenAt != 0 && now - _freezeSeenAt <= Ticks(_settings.SessionTimeout) ? Duration(_freezeGap) : null;
    }

    private bool OwnsEverything()
    {
        try
        {
            var admin = _admin ?? throw new ObjectDisposedException(nameof(KafkaGroupMember));
            // The configured topics, not the consumer's subscription: closing unsubscribes before it revokes.
            var metadata = _topics
                .Select(t => admin.GetMetadata(t, TimeSpan.FromSeconds(2)))
                .SelectMany(m => m.Topics).Sum(t => t.Partitions.Count);
            lock (_gate)
            {
                return metadata > 0 && _owned.Count >= metadata;
            }
        }
        catch (KafkaException)
        {
            return false;
        }
    }

    private void PollLoop()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    // Records are never used: everything assigned is paused right after the assignment.
                    _consumer.Consume(TimeSpan.FromMilliseconds(100));
                }
                catch (ConsumeException e)
                {
                    KafkaLog.ClientError(_logger, _name, e.Error.Code, e.Error.Reason);
                }
                catch (KafkaException e)
                {
                    KafkaLog.ClientError(_logger, _name, e.Error.Code, e.Error.Reason);
                    _stop.Token.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(500));
                }

                List<TopicPartition> pause;
                lock (_gate)
                {
                    pause = [.. _toPause];
                    _toPause.Clear();
                }

                if (pause.Count > 0)
                {
                    try
                    {
                        _consumer.Pause(pause);
                    }
                    catch (KafkaException e)
                    {
                        KafkaLog.ClientError(_logger, _name, e.Error.Code, e.Error.Reason);
                    }
                }
            }
        }
        finally
        {
            _pollStopped.TrySetResult();
        }
    }

    private void TickLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            long sessionLost;
            lock (_gate)
            {
                CheckFrozen();
                Monitor.PulseAll(_gate);
                sessionLost = _sessionLostInFreeze;
                _sessionLostInFreeze = 0;
            }
            if (sessionLost > 0)
            {
                StayOut(Duration(sessionLost));
            }
            try
            {
                _stop.Token.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(200));
            }
            catch (ObjectDisposedException)
            {
                return;
            }
        }
    }

    /// <summary>Under _gate. A gap in the ticks means this process was frozen: grants it gave are unreliable now.</summary>
    private void CheckFrozen()
    {
        var now = Stopwatch.GetTimestamp();
        var gap = now - _lastTick;
        _lastTick = now;
        if (gap <= Ticks(_settings.FreezeThreshold))
        {
            return;
        }

        KafkaMemberLog.Frozen(_logger, _name, (long)Duration(gap).TotalMilliseconds);
        _freezeSeenAt = now;
        _freezeGap = gap;
        if (gap > Ticks(_settings.SessionTimeout))
        {
            // No heartbeat for longer than the session: the group has dropped this member, whatever librdkafka believes
            // yet. When it owned partitions librdkafka reports them lost (OnLost stays out before the rejoin); when its
            // join was still pending or it owned nothing, librdkafka rejoins without a callback, and the tick thread's
            // StayOut (TickLoop) races that rejoin: librdkafka usually wins, and the member then leaves once that
            // rebalance completes (docs/kafka.md).
            _sessionLostInFreeze = gap;
        }
        foreach (var (tp, owned) in _owned)
        {
            if (owned.Grant is { } grant)
            {
                _revokeHolder(grant.Holder, tp.Topic, tp.Partition.Value, grant.Epoch);
                owned.Grant = null;
            }
        }
        _authorityFrom = now + Ticks(_settings.GrantTtl);
    }

    /// <summary>How soon an entity asks again while this instance waits for its first assignment.</summary>
    private TimeSpan NotReadyRetry => _settings.RenewInterval / 3;

    private KafkaGrantReply Reply(TopicPartition tp, long epoch, KafkaGrantStatus status, TimeSpan retryAfter) =>
        new(tp.Topic, tp.Partition.Value, epoch, status, _settings.GrantTtl, retryAfter);

    private static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    private static TimeSpan Duration(long ticks) => TimeSpan.FromSeconds((double)ticks / Stopwatch.Frequency);

    private static string Describe(IEnumerable<TopicPartition> partitions) =>
        string.Join(",", partitions.Select(p => $"{p.Topic}/{p.Partition.Value}"));

    /// <summary>Test hook: behave as if this process had been frozen just now (by default for twice the freeze threshold).</summary>
    internal void SimulateFreeze(TimeSpan? gap = null)
    {
        lock (_gate)
        {
            _lastTick -= Ticks(gap ?? _settings.FreezeThreshold * 2);
            CheckFrozen();
        }
    }

    private sealed class Owned
    {
        public Grant? Grant { get; set; }
        public long? KnownCommitted { get; set; }
        public bool Revoking { get; set; }
        /// <summary>While revoking: the latest moment any renewal may extend the grant to (Stopwatch ticks).</summary>
        public long RevokeCap { get; set; }
        public long HighestAdopted { get; set; }
    }

    private sealed class Grant(long epoch, object holder, long expiresAt)
    {
        public long Epoch { get; } = epoch;
        public object Holder { get; set; } = holder;
        public long ExpiresAt { get; set; } = expiresAt;
    }
}

internal static partial class KafkaMemberLog
{
    [LoggerMessage(4064, LogLevel.Warning,
        "Kafka consumer {Consumer}: this node is downed or sees no majority of the cluster; the group member gives and renews no grant until that changes (owners stop within one grant ttl)")]
    public static partial void SelfFenced(ILogger logger, string consumer);

    [LoggerMessage(4065, LogLevel.Information, "Kafka consumer {Consumer}: this node sees a majority of the cluster again; the group member grants again")]
    public static partial void SelfFenceLifted(ILogger logger, string consumer);

    [LoggerMessage(4063, LogLevel.Information,
        "Kafka consumer {Consumer}: group member started in consumer group {Group} (session timeout {SessionTimeoutMs} ms, grant ttl {GrantTtlMs} ms, fresh grants after {AuthorityWaitMs} ms)")]
    public static partial void Started(ILogger logger, string consumer, string group, int sessionTimeoutMs, int grantTtlMs, long authorityWaitMs);

    [LoggerMessage(4051, LogLevel.Information, "Kafka consumer {Consumer}: the group assigned {Count} partition(s) to this deployment: {Partitions}")]
    public static partial void Assigned(ILogger logger, string consumer, int count, string partitions);

    [LoggerMessage(4052, LogLevel.Information,
        "Kafka consumer {Consumer}: the group revokes {Count} partition(s): {Partitions}; waiting for their owners to stop: {Wait}")]
    public static partial void Revoking(ILogger logger, string consumer, int count, string partitions, bool wait);

    [LoggerMessage(4053, LogLevel.Warning,
        "Kafka consumer {Consumer}: owners of {Partitions} did not release within the revoke timeout; their grants are left to expire")]
    public static partial void RevokeTimedOut(ILogger logger, string consumer, string partitions);

    [LoggerMessage(4054, LogLevel.Warning, "Kafka consumer {Consumer}: {Count} partition(s) lost ({Reason}); their owners were told to stop")]
    public static partial void Lost(ILogger logger, string consumer, int count, string reason);

    [LoggerMessage(4055, LogLevel.Warning,
        "Kafka consumer {Consumer}: the group member's process was frozen for {GapMs} ms; all grants dropped, new grants after one grant ttl")]
    public static partial void Frozen(ILogger logger, string consumer, long gapMs);

    [LoggerMessage(4066, LogLevel.Warning,
        "Kafka consumer {Consumer}: the group dropped this member while its process was frozen ({GapMs} ms); it stays out of the group until a majority of the cluster confirms that this node is still a member (a downed node never rejoins)")]
    public static partial void StayedOut(ILogger logger, string consumer, long gapMs);

    [LoggerMessage(4068, LogLevel.Information,
        "Kafka consumer {Consumer}: {Confirmed} of {Members} cluster members confirmed after the freeze that this node is still a member")]
    public static partial void MembershipConfirmed(ILogger logger, string consumer, int confirmed, int members);

    [LoggerMessage(4069, LogLevel.Information,
        "Kafka consumer {Consumer}: the group member starts with the standby member this node joined to the group while the previous member's node was unreachable (assigned already: {Assigned}; fresh grants after {AuthorityWaitMs} ms)")]
    public static partial void AdoptedStandby(ILogger logger, string consumer, bool assigned, long authorityWaitMs);

    [LoggerMessage(4067, LogLevel.Information, "Kafka consumer {Consumer}: the group member rejoins the group")]
    public static partial void Rejoining(ILogger logger, string consumer);

    [LoggerMessage(4056, LogLevel.Debug, "Kafka consumer {Consumer}: granted {Topic}/{Partition} to epoch {Epoch}")]
    public static partial void Granted(ILogger logger, string consumer, string topic, int partition, long epoch);

    [LoggerMessage(4057, LogLevel.Information, "Kafka consumer {Consumer}: adopted the grant of {Topic}/{Partition} (epoch {Epoch}) from a previous member")]
    public static partial void Adopted(ILogger logger, string consumer, string topic, int partition, long epoch);

    [LoggerMessage(4058, LogLevel.Warning, "Kafka consumer {Consumer}: commit through the group member failed: {Code} {Reason}")]
    public static partial void CommitFailed(ILogger logger, string consumer, ErrorCode code, string reason);

    [LoggerMessage(4059, LogLevel.Information, "Kafka consumer {Consumer}: group member stopped")]
    public static partial void Stopped(ILogger logger, string consumer);

    [LoggerMessage(4060, LogLevel.Warning,
        "Kafka consumer {Consumer}: {Topic}/{Partition} lost its delivery grant ({Reason}); stopping it (delivery stops at once)")]
    public static partial void GrantLost(ILogger logger, string consumer, string topic, int partition, string reason);

    [LoggerMessage(4061, LogLevel.Warning,
        "Kafka consumer {Consumer}: commit of {Topic}/{Partition} at {Offset} refused ({Outcome}); this owner commits nothing more")]
    public static partial void CommitRefused(ILogger logger, string consumer, string topic, int partition, long offset, KafkaCommitOutcome outcome);
}
