using System.Collections.Concurrent;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Testing.Kafka;
using Confluent.Kafka;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;

namespace Centrifugo.Actors.Tests.Kafka;

/// <summary>The group member against the real Kafka protocol (librdkafka's mock cluster checks generations on OffsetCommit).</summary>
public sealed class KafkaGroupMemberTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private static readonly KafkaGroupMemberSettings Fast = new()
    {
        SessionTimeout = TimeSpan.FromSeconds(3),
        GrantTtl = TimeSpan.FromMilliseconds(1500),
        RenewInterval = TimeSpan.FromMilliseconds(300),
        FreezeThreshold = TimeSpan.FromMilliseconds(1000),
        RevokeTimeout = TimeSpan.FromSeconds(5),
        MetadataRefresh = TimeSpan.FromSeconds(1),
    };

    private readonly KafkaMockCluster _cluster = KafkaMockCluster.Create(brokers: 1);
    private readonly CapturingLoggerProvider _logs = new();
    private readonly ConcurrentQueue<(object Holder, string Topic, int Partition, long Epoch)> _revoked = new();

    public void Dispose()
    {
        foreach (var line in _logs.Lines.Where(l => l.Contains("[40", StringComparison.Ordinal)))
        {
            output.WriteLine(line);
        }
        _cluster.Dispose();
    }

    private KafkaGroupMember Member(string topic, string group, Action<KafkaGroupMember, object, string, int, long>? onRevoke = null,
        Action<TimeSpan>? stayedOut = null)
    {
        KafkaGroupMember? member = null;
        member = new KafkaGroupMember("k", new KafkaConsumerOptions { Brokers = [_cluster.Bootstrap], Topics = [topic], ConsumerGroup = group },
            Fast, _logs.CreateFactory(), (holder, t, p, e) =>
            {
                _revoked.Enqueue((holder, t, p, e));
                onRevoke?.Invoke(member!, holder, t, p, e);
            }, stayedOut: stayedOut);
        return member;
    }

    /// <summary>A member of a fresh group on a fresh topic, once the group assigned it every partition.</summary>
    private async Task<KafkaGroupMember> AssignedMemberAsync(int partitions, Action<TimeSpan>? stayedOut = null) =>
        (await AssignedGroupAsync(partitions, stayedOut)).Member;

    /// <summary>A fresh topic and group, and a member of that group once the group assigned it every partition.</summary>
    private async Task<(string Topic, string Group, KafkaGroupMember Member)> AssignedGroupAsync(int partitions, Action<TimeSpan>? stayedOut = null)
    {
        var topic = Unique("member");
        var group = Unique("g");
        _cluster.CreateTopic(topic, partitions);
        var member = Member(topic, group, stayedOut: stayedOut);
        await Poll.UntilAsync(() => member.OwnedPartitions().Count == partitions, "every partition assigned", TimeSpan.FromSeconds(30));
        return (topic, group, member);
    }

    private long? Committed(string group, string topic, int partition)
    {
        using var consumer = Consumer(_cluster.Bootstrap, group);
        var offset = consumer.Committed([new TopicPartition(topic, partition)], TimeSpan.FromSeconds(10)).Single().Offset;
        return offset.Value >= 0 ? offset.Value : null;
    }

    private static async Task<KafkaGrantReply> GrantedAsync(KafkaGroupMember member, string topic, int partition, object holder)
    {
        KafkaGrantReply reply = null!;
        await Poll.UntilAsync(() => (reply = member.Acquire(topic, partition, holder)).Status == KafkaGrantStatus.Granted,
            $"{topic}/{partition} granted", TimeSpan.FromSeconds(30));
        return reply;
    }

    [Fact]
    public async Task Commits_are_refused_from_a_stale_epoch_a_stale_member_and_never_move_backwards()
    {
        var (topic, group, assigned) = await AssignedGroupAsync(2);
        await using var member = assigned;

        // A fresh member grants nothing during its first TTL (a previous instance's grants may still run).
        var first = await GrantedAsync(member, topic, 0, "h1");
        Assert.Equal(KafkaGrantStatus.Busy, member.Acquire(topic, 0, "h2").Status);

        Assert.Equal([KafkaCommitOutcome.Committed], await member.CommitAsync([new KafkaCommitEntry(topic, 0, first.Epoch, 5)], default));
        Assert.Equal(5, Committed(group, topic, 0));
        // Renewed as its holder would (a loaded machine can take longer than the 1.5 s TTL for the steps above).
        Assert.Equal(KafkaGrantStatus.Granted, member.Renew(topic, 0, first.Epoch, "h1").Status);
        Assert.Equal([KafkaCommitOutcome.Behind], await member.CommitAsync([new KafkaCommitEntry(topic, 0, first.Epoch, 3)], default));
        Assert.Equal([KafkaCommitOutcome.StaleEpoch], await member.CommitAsync([new KafkaCommitEntry(topic, 0, first.Epoch + 1, 7)], default));

        // The next incarnation gets a new epoch once the first released; the first can no longer commit.
        member.Release(topic, 0, first.Epoch);
        var second = await GrantedAsync(member, topic, 0, "h2");
        Assert.NotEqual(first.Epoch, second.Epoch);
        Assert.Equal(KafkaGrantStatus.Lost, member.Renew(topic, 0, first.Epoch, "h1").Status);
        Assert.Equal([KafkaCommitOutcome.StaleEpoch, KafkaCommitOutcome.Committed],
            await member.CommitAsync([new KafkaCommitEntry(topic, 0, first.Epoch, 9), new KafkaCommitEntry(topic, 0, second.Epoch, 8)], default));
        Assert.Equal(8, Committed(group, topic, 0));

        // A member whose generation the broker no longer accepts is fenced by the broker (nothing moves); librdkafka
        // then reports the assignment lost, the member tells the holder to stop and refuses its commits.
        _cluster.PushRequestErrors(8 /* OffsetCommit */, 22 /* ILLEGAL_GENERATION */);
        Assert.Equal([KafkaCommitOutcome.Fenced], await member.CommitAsync([new KafkaCommitEntry(topic, 0, second.Epoch, 11)], default));
        Assert.Equal(8, Committed(group, topic, 0));
        await Poll.UntilAsync(() => _revoked.Any(r => Equals(r.Holder, "h2") && r.Epoch == second.Epoch),
            "the holder told to stop", TimeSpan.FromSeconds(30));
        Assert.NotEqual(KafkaGrantStatus.Granted, member.Renew(topic, 0, second.Epoch, "h2").Status);
        Assert.NotEqual(KafkaCommitOutcome.Committed,
            (await member.CommitAsync([new KafkaCommitEntry(topic, 0, second.Epoch, 12)], default)).Single());
        Assert.Equal(8, Committed(group, topic, 0));
        _cluster.ClearRequestErrors(8);
    }

    [Fact]
    public async Task A_member_not_assigned_yet_asks_holders_to_retry_instead_of_saying_not_owned()
    {
        // The member moves (its node left): the new instance's group assignment takes a rebalance. An entity asking in
        // between must retry shortly, not stop for good (a NotOwned entity waits for the keeper, seconds later).
        var topic = Unique("member");
        var group = Unique("g");
        _cluster.CreateTopic(topic, 1);
        _cluster.SetInitialRebalanceDelay(2000); // the group forms 2 s after the first join
        await using var member = Member(topic, group);

        var early = member.Acquire(topic, 0, "h1");
        Assert.Equal(KafkaGrantStatus.NotReady, early.Status);
        Assert.InRange(early.RetryAfter, TimeSpan.FromMilliseconds(50), Fast.RenewInterval);

        await Poll.UntilAsync(() => member.OwnedPartitions().Count == 1, "partition assigned", TimeSpan.FromSeconds(30));
        await GrantedAsync(member, topic, 0, "h1");
        // Once assigned, a partition the group did not give this deployment is not owned.
        Assert.Equal(KafkaGrantStatus.NotOwned, member.Acquire(topic, 1, "h2").Status);
    }

    [Fact]
    public async Task A_member_that_owns_every_partition_leaves_without_stopping_the_holders()
    {
        // The member moves to another node (its node leaves): nobody else in the group can take the partitions while the
        // next instance joins, so the holders keep their grants for it to adopt instead of being stopped (and left to
        // wait for the keeper), and the leave is not held up waiting for holders that can no longer reach this instance.
        var (topic, _, member) = await AssignedGroupAsync(2);
        await GrantedAsync(member, topic, 0, "h0");
        await GrantedAsync(member, topic, 1, "h1");

        var leaving = System.Diagnostics.Stopwatch.StartNew();
        await member.DisposeAsync();
        output.WriteLine($"left the group in {leaving.ElapsedMilliseconds} ms");

        Assert.Empty(_revoked);
        Assert.Contains(_logs.Lines, l => l.Contains("[4052]", StringComparison.Ordinal) && l.Contains("waiting for their owners to stop: False", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_member_closed_while_its_first_join_is_pending_waits_for_its_member_id_so_that_its_leave_leaves_no_ghost()
    {
        // The member's node is stopped within seconds of the member starting there (a rolling restart). librdkafka's mock
        // cluster gives a joining member its id only with the join's result, after its re-forming window (session − 1 s):
        // closed before that, the member could not leave, and the group kept it as a ghost for a whole session.
        var (topic, group, assigned) = await AssignedGroupAsync(2);
        await using var first = assigned;

        // Closed at once: its JoinGroup is still pending (the mock answers it only at the end of its 2 s window).
        var second = Member(topic, group);
        var closing = System.Diagnostics.Stopwatch.StartNew();
        await second.DisposeAsync();
        output.WriteLine($"second member closed after {closing.ElapsedMilliseconds} ms");

        Assert.True(second.LeftWithMemberId, "the second member left with a member id");
        await Poll.UntilAsync(() => first.OwnedPartitions().Count == 2, "both partitions with the first member again", TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task A_moved_member_retries_a_holders_commit_until_it_adopted_the_grant_instead_of_stopping_the_holder()
    {
        // Seen in the cluster benchmark's node logs: after a graceful member move, an owner's periodic commit reached the
        // new instance before its first assignment (NotOwned) or before the owner's renewal adopted its grant
        // (StaleEpoch); either stopped the owner, whose grant the new instance would have adopted a moment later.
        var (topic, group, first) = await AssignedGroupAsync(1);
        var grant = await GrantedAsync(first, topic, 0, "h0");
        Assert.Equal([KafkaCommitOutcome.Committed], await first.CommitAsync([new KafkaCommitEntry(topic, 0, grant.Epoch, 5)], default));
        await first.DisposeAsync();
        Assert.Empty(_revoked);

        _cluster.SetInitialRebalanceDelay(2000); // the next instance is assigned 2 s after it joins
        await using var second = Member(topic, group);
        Assert.Equal([KafkaCommitOutcome.Pending], await second.CommitAsync([new KafkaCommitEntry(topic, 0, grant.Epoch, 6)], default));

        await Poll.UntilAsync(() => second.OwnedPartitions().Count == 1, "partition assigned to the next instance", TimeSpan.FromSeconds(30));
        Assert.Equal([KafkaCommitOutcome.Pending], await second.CommitAsync([new KafkaCommitEntry(topic, 0, grant.Epoch, 6)], default));
        Assert.Equal(5, Committed(group, topic, 0));

        // The holder's renewal adopts the grant; its commit goes through under the same epoch.
        Assert.Equal(KafkaGrantStatus.Granted, second.Renew(topic, 0, grant.Epoch, "h0").Status);
        Assert.Equal([KafkaCommitOutcome.Committed], await second.CommitAsync([new KafkaCommitEntry(topic, 0, grant.Epoch, 7)], default));
        Assert.Equal(7, Committed(group, topic, 0));
        // An epoch of neither instance that was never adopted is still refused once another grant exists.
        Assert.Equal([KafkaCommitOutcome.StaleEpoch], await second.CommitAsync([new KafkaCommitEntry(topic, 0, grant.Epoch - 1, 8)], default));
    }

    [Fact]
    public async Task A_grant_expires_unless_renewed_and_a_frozen_member_drops_its_grants()
    {
        var (topic, group, assigned) = await AssignedGroupAsync(1);
        await using var member = assigned;
        var grant = await GrantedAsync(member, topic, 0, "h1");

        // Renewed: still held. Not renewed for a TTL: another holder gets it, with a new epoch.
        Assert.Equal(KafkaGrantStatus.Granted, member.Renew(topic, 0, grant.Epoch, "h1").Status);
        Assert.Equal(KafkaGrantStatus.Busy, member.Acquire(topic, 0, "h2").Status);
        var next = await GrantedAsync(member, topic, 0, "h2");
        Assert.NotEqual(grant.Epoch, next.Epoch);
        Assert.Equal(KafkaGrantStatus.Lost, member.Renew(topic, 0, grant.Epoch, "h1").Status);

        // A freeze of the member's own process drops every grant and grants nothing for one TTL.
        member.SimulateFreeze();
        Assert.Contains(_revoked, r => Equals(r.Holder, "h2") && r.Epoch == next.Epoch);
        Assert.Equal(KafkaGrantStatus.Busy, member.Acquire(topic, 0, "h3").Status);
        var afterFreeze = await GrantedAsync(member, topic, 0, "h3");
        Assert.NotEqual(next.Epoch, afterFreeze.Epoch);
    }

    [Fact]
    public async Task A_member_the_group_dropped_during_a_freeze_stays_out_of_the_group_until_told_to_rejoin()
    {
        const short heartbeat = 12;
        const int unknownMemberId = 25;
        var stayedOut = new ConcurrentQueue<TimeSpan>();
        await using var member = await AssignedMemberAsync(partitions: 2, stayedOut.Enqueue);

        // Dropped by the group (the broker no longer knows the member) without a freeze: librdkafka rejoins by itself.
        var rejoin = System.Diagnostics.Stopwatch.StartNew();
        _cluster.PushRequestErrors(heartbeat, unknownMemberId);
        await Poll.UntilAsync(() => _logs.Lines.Any(l => l.Contains("[4054]", StringComparison.Ordinal)), "partitions lost", TimeSpan.FromSeconds(30));
        await Poll.UntilAsync(() => member.OwnedPartitions().Count == 2, "rejoined by itself", TimeSpan.FromSeconds(30));
        rejoin.Stop();
        Assert.Empty(stayedOut);
        Assert.False(member.IsOutOfGroup);

        // Dropped right after its process was frozen (its node may have been downed meanwhile): it stays out.
        member.SimulateFreeze();
        _cluster.PushRequestErrors(heartbeat, unknownMemberId);
        await Poll.UntilAsync(() => !stayedOut.IsEmpty, "stayed out after the freeze", TimeSpan.FromSeconds(30));
        Assert.True(member.IsOutOfGroup);
        // Watched for twice as long as the rejoin above took (the wait is the behaviour under test: no rejoin in it).
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (watch.Elapsed < rejoin.Elapsed * 2 + TimeSpan.FromSeconds(1))
        {
            Assert.Empty(member.OwnedPartitions());
            Assert.DoesNotContain(_logs.Lines.SkipWhile(l => !l.Contains("[4066]", StringComparison.Ordinal)),
                l => l.Contains("[4051]", StringComparison.Ordinal));
            await Task.Delay(100);
        }

        member.Rejoin();
        await Poll.UntilAsync(() => member.OwnedPartitions().Count == 2, "rejoined when told", TimeSpan.FromSeconds(30));
        Assert.False(member.IsOutOfGroup);
    }

    [Fact]
    public async Task A_member_frozen_for_longer_than_its_session_stays_out_of_the_group_even_without_a_lost_callback()
    {
        // A freeze longer than the session means the group dropped the member, also when librdkafka reports nothing lost
        // (its join was pending, or it owned nothing) and would simply rejoin one round trip after the thaw.
        var stayedOut = new ConcurrentQueue<TimeSpan>();
        await using var member = await AssignedMemberAsync(partitions: 2, stayedOut.Enqueue);

        member.SimulateFreeze(Fast.SessionTimeout + TimeSpan.FromSeconds(1));
        await Poll.UntilAsync(() => !stayedOut.IsEmpty, "stayed out after the freeze", TimeSpan.FromSeconds(30));
        Assert.True(member.IsOutOfGroup);
        await Poll.UntilAsync(() => member.OwnedPartitions().Count == 0, "left the group", TimeSpan.FromSeconds(30));
        Assert.Single(stayedOut);

        member.Rejoin();
        await Poll.UntilAsync(() => member.OwnedPartitions().Count == 2, "rejoined when told", TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task A_second_deployment_splits_the_partitions_and_revocation_waits_for_the_holder()
    {
        var topic = Unique("member");
        var group = Unique("g");
        _cluster.CreateTopic(topic, 4);
        var released = new ConcurrentBag<(string Topic, int Partition)>();
        var finalOutcome = new ConcurrentDictionary<int, KafkaCommitOutcome>();
        await using var a = Member(topic, group, (m, _, t, p, e) =>
        {
            // The holder finishes and releases a little later (its final commit), as an entity does.
            _ = Task.Run(async () =>
            {
                // Retried like the hub's final commit (a commit racing the generation bump is refused once).
                for (var attempt = 0; attempt < 300; attempt++)
                {
                    var outcome = (await m.CommitAsync([new KafkaCommitEntry(t, p, e, 3)], default)).Single();
                    output.WriteLine($"final commit {t}/{p} attempt {attempt}: {outcome}");
                    if (outcome is not (KafkaCommitOutcome.Failed or KafkaCommitOutcome.Fenced))
                    {
                        finalOutcome[p] = outcome;
                        break;
                    }
                    await Task.Delay(100);
                }
                released.Add((t, p));
                m.Release(t, p, e);
            });
        });
        await Poll.UntilAsync(() => a.OwnedPartitions().Count == 4, "all partitions on the first member", TimeSpan.FromSeconds(30));
        var grants = new Dictionary<int, KafkaGrantReply>();
        for (var p = 0; p < 4; p++)
        {
            grants[p] = await GrantedAsync(a, topic, p, $"a{p}");
        }

        using var renewing = new CancellationTokenSource();
        var renewals = Task.Run(async () =>
        {
            while (!renewing.IsCancellationRequested)
            {
                for (var p = 0; p < 4; p++)
                {
                    a.Renew(topic, p, grants[p].Epoch, $"a{p}");
                }
                await Task.Delay(Fast.RenewInterval);
            }
        });

        await using var b = Member(topic, group);
        await Poll.UntilAsync(() => a.OwnedPartitions().Count + b.OwnedPartitions().Count == 4 && b.OwnedPartitions().Count > 0,
            "partitions split between the two members", TimeSpan.FromSeconds(60));
        var ofA = a.OwnedPartitions().Select(p => p.Partition).ToHashSet();
        var ofB = b.OwnedPartitions().Select(p => p.Partition).ToHashSet();
        Assert.Empty(ofA.Intersect(ofB));
        // Every partition that moved was released by its holder (final commit included) before B could own it.
        Assert.All(ofB, p => Assert.Contains((topic, p), released));
        // The final commit may be refused while the group rebalances (the mock answers REBALANCE_IN_PROGRESS) and is
        // retried, but only while the holder's grant lasts: a revocation ends within one grant TTL, after which the commit
        // is refused (as stale while the revocation runs, as not owned once it completed); the next owner then re-reads
        // from the last committed offset: duplicates, never loss.
        Assert.All(ofB, p => Assert.Contains(finalOutcome.GetValueOrDefault(p, KafkaCommitOutcome.Failed),
            new[] { KafkaCommitOutcome.Committed, KafkaCommitOutcome.StaleEpoch, KafkaCommitOutcome.NotOwned }));
        await Poll.UntilAsync(() => ofB.Where(p => finalOutcome[p] == KafkaCommitOutcome.Committed).All(p => Committed(group, topic, p) == 3),
            "the moved partitions' accepted final commits are visible", TimeSpan.FromSeconds(30));
        Assert.All(ofB.Where(p => finalOutcome[p] != KafkaCommitOutcome.Committed), p => Assert.Null(Committed(group, topic, p)));
        // A partition that stayed with A keeps its grant, unless the group revoked it on the way (the mock may revoke and
        // assign back): a revocation ends the grant within one TTL, and the holder then acquires a new one.
        Assert.All(ofA.Where(p => !_revoked.Any(r => r.Partition == p)),
            p => Assert.Equal(KafkaGrantStatus.Granted, a.Renew(topic, p, grants[p].Epoch, $"a{p}").Status));
        await renewing.CancelAsync();
        await renewals;
    }
    [Fact]
    public async Task A_holder_that_never_releases_cannot_stretch_a_revocation_into_the_next_owners_grant()
    {
        // The holder keeps renewing and never releases (its final commit could not land): the revocation must still end
        // within a grant TTL, so that this member rejoins in time and the other deployment is granted the partition only
        // after every grant this member gave for it has expired. Before the cap, renewals kept the grant alive for the
        // whole revoke timeout (5 s here), longer than the mock broker waits for a rejoin (session timeout - 1 s).
        var topic = Unique("member");
        var group = Unique("g");
        _cluster.CreateTopic(topic, 4);
        var revokedAt = new ConcurrentDictionary<int, long>();
        await using var a = Member(topic, group, (_, _, _, p, _) => revokedAt.TryAdd(p, System.Diagnostics.Stopwatch.GetTimestamp()));
        await Poll.UntilAsync(() => a.OwnedPartitions().Count == 4, "all partitions on the first member", TimeSpan.FromSeconds(30));
        var grants = new Dictionary<int, KafkaGrantReply>();
        for (var p = 0; p < 4; p++)
        {
            grants[p] = await GrantedAsync(a, topic, p, $"a{p}");
        }

        // The latest moment, per partition, until which a holder of A may deliver (as the holder computes it).
        var validUntil = new ConcurrentDictionary<int, long>();
        using var renewing = new CancellationTokenSource();
        var renewals = Task.Run(async () =>
        {
            while (!renewing.IsCancellationRequested)
            {
                for (var p = 0; p < 4; p++)
                {
                    var sentAt = System.Diagnostics.Stopwatch.GetTimestamp();
                    var reply = a.Renew(topic, p, grants[p].Epoch, $"a{p}");
                    if (reply.Status == KafkaGrantStatus.Granted)
                    {
                        var until = sentAt + (long)(reply.Ttl.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
                        validUntil.AddOrUpdate(p, until, (_, old) => Math.Max(old, until));
                    }
                }
                await Task.Delay(Fast.RenewInterval / 3);
            }
        });

        await using var b = Member(topic, group);
        var grantedToB = new Dictionary<int, long>();
        await Poll.UntilAsync(() =>
        {
            foreach (var owned in b.OwnedPartitions().Where(o => !grantedToB.ContainsKey(o.Partition)))
            {
                if (b.Acquire(topic, owned.Partition, $"b{owned.Partition}").Status == KafkaGrantStatus.Granted)
                {
                    grantedToB[owned.Partition] = System.Diagnostics.Stopwatch.GetTimestamp();
                }
            }
            return grantedToB.Count > 0 && a.OwnedPartitions().Count + b.OwnedPartitions().Count == 4;
        }, "the second member owns and grants partitions", TimeSpan.FromSeconds(60));
        await renewing.CancelAsync();
        await renewals;

        Assert.Empty(a.OwnedPartitions().Select(o => o.Partition).Intersect(b.OwnedPartitions().Select(o => o.Partition)));
        // Renewals during the revocation did not carry any grant past its start + one TTL (they used to, up to the revoke timeout).
        Assert.NotEmpty(revokedAt);
        var ttl = (long)(Fast.GrantTtl.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        var slack = System.Diagnostics.Stopwatch.Frequency / 20; // 50 ms: the revocation starts just before the callback runs
        Assert.All(revokedAt, r => Assert.True(validUntil[r.Key] <= r.Value + ttl + slack,
            $"partition {r.Key}: a renewal during its revocation kept the grant valid {System.Diagnostics.Stopwatch.GetElapsedTime(r.Value, validUntil[r.Key]).TotalMilliseconds:F0} ms after the revocation began (ttl {Fast.GrantTtl.TotalMilliseconds} ms)"));
        Assert.All(grantedToB, g => Assert.True(g.Value >= validUntil.GetValueOrDefault(g.Key),
            $"partition {g.Key} granted to the second member {System.Diagnostics.Stopwatch.GetElapsedTime(g.Value, validUntil[g.Key]).TotalMilliseconds:F0} ms before the first member's last grant for it expired"));
        Assert.Contains(_logs.Lines, l => l.Contains("[4052]", StringComparison.Ordinal)); // a revocation did happen
    }
}
