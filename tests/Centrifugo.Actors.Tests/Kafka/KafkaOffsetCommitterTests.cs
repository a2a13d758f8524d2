using System.Collections.Concurrent;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Testing.Kafka;
using Confluent.Kafka;
using Microsoft.Extensions.Logging.Abstractions;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;

namespace Centrifugo.Actors.Tests.Kafka;

public sealed class KafkaOffsetCommitterTests : IDisposable
{
    private static readonly KafkaConsumerHubSettings Fast = new()
    {
        CommitInterval = TimeSpan.FromMilliseconds(100),
        CommittedLookupTimeout = TimeSpan.FromSeconds(2),
        FinalCommitTimeout = TimeSpan.FromMilliseconds(500),
    };

    private readonly KafkaMockCluster _cluster = KafkaMockCluster.Create();

    public void Dispose() => _cluster.Dispose();

    private sealed class Target(string topic, int partition, long epoch) : IKafkaCommitTarget
    {
        private long _marked = -1;
        private long _committed = -1;

        public TopicPartition TopicPartition { get; } = new(topic, partition);
        public long Epoch { get; } = epoch;
        public long? MarkedOffset => Interlocked.Read(ref _marked) is var m and >= 0 ? m : null;
        public long? CommittedOffset => Interlocked.Read(ref _committed) is var c and >= 0 ? c : null;
        public bool Refused { get; private set; }
        public bool Lapsed { get; private set; }

        public void Mark(long offset) => Interlocked.Exchange(ref _marked, offset);

        public long? PendingCommit()
        {
            var next = Interlocked.Read(ref _marked) + 1;
            return !Refused && next > 0 && next > Interlocked.Read(ref _committed) ? next : null;
        }

        public void Committed(long next) => Interlocked.Exchange(ref _committed, Math.Max(next, Interlocked.Read(ref _committed)));
        public void RefuseCommits() => Refused = true;
        public void LapseGrant() => Lapsed = true;
    }

    private KafkaOffsetCommitter Committer(IConsumer<byte[]?, byte[]?> consumer, params Target[] targets) =>
        new(Unique("c"), consumer, () => targets, Fast, NullLogger.Instance);

    [Fact]
    public async Task Marked_offsets_go_through_the_group_member_in_one_batch_and_a_refusal_stops_that_partition_for_good()
    {
        using var consumer = Consumer(_cluster.Bootstrap, Unique("g"));
        var granted = new Target("t", 0, epoch: 3);
        var stale = new Target("t", 1, epoch: 2);
        var ungoverned = new Target("t", 2, epoch: 0);
        var calls = new ConcurrentQueue<IReadOnlyList<KafkaCommitEntry>>();
        using var committer = Committer(consumer, granted, stale, ungoverned);
        committer.Committer = (entries, _) =>
        {
            calls.Enqueue(entries);
            return entries.Select(e => e.Partition == 1 ? KafkaCommitOutcome.StaleEpoch : KafkaCommitOutcome.Committed).ToArray();
        };

        granted.Mark(9);
        stale.Mark(4);
        ungoverned.Mark(7);
        await WaitUntilAsync(() => granted.CommittedOffset == 10 && stale.Refused, "the batch to be answered");

        Assert.True(stale.Lapsed);
        Assert.Null(stale.CommittedOffset);
        Assert.Null(ungoverned.CommittedOffset);
        var first = calls.First();
        Assert.Equal([(0, 3L, 10L), (1, 2L, 5L)], first.Select(e => (e.Partition, e.Epoch, e.Offset)));
        Assert.All(calls, c => Assert.DoesNotContain(c, e => e.Partition == 2));

        // Nothing more is sent for the refused partition, whatever it marks.
        stale.Mark(8);
        granted.Mark(11);
        await WaitUntilAsync(() => granted.CommittedOffset == 12, "the next mark to be committed");
        Assert.All(calls.Skip(1), c => Assert.DoesNotContain(c, e => e.Partition == 1));
        await committer.StopAsync();
    }

    [Fact]
    public async Task A_final_commit_answers_true_once_committed_and_false_when_the_member_keeps_failing()
    {
        using var consumer = Consumer(_cluster.Bootstrap, Unique("g"));
        var target = new Target("t", 0, epoch: 1);
        var failing = true;
        using var committer = Committer(consumer, target);
        committer.Committer = (entries, _) => entries.Select(_ => Volatile.Read(ref failing) ? KafkaCommitOutcome.Failed : KafkaCommitOutcome.Committed).ToArray();

        target.Mark(3);
        Assert.False(await committer.CommitFinalAsync(target)); // gives up after FinalCommitTimeout
        Assert.Null(target.CommittedOffset);

        Volatile.Write(ref failing, false);
        Assert.True(await committer.CommitFinalAsync(target));
        Assert.Equal(4, target.CommittedOffset);
        await committer.StopAsync();
    }

    [Fact]
    public async Task A_member_that_never_answers_holds_the_committed_offset_lookups_for_one_member_commit_timeout_only()
    {
        // The group member's node was killed: a commit sent to it gets no answer until the call times out, and the
        // committer's thread also serves the lookups that restarted owners wait for. In a 3-node chaos run those owners
        // waited for the 10 s final-commit timeout although the next member had the assignment 2 s earlier.
        var topic = Unique("commit");
        _cluster.CreateTopic(topic, 1);
        using var consumer = Consumer(_cluster.Bootstrap, Unique("g"));
        var target = new Target(topic, 0, epoch: 1);
        var settings = Fast with { FinalCommitTimeout = TimeSpan.FromSeconds(30), MemberCommitTimeout = TimeSpan.FromMilliseconds(300) };
        using var committer = new KafkaOffsetCommitter(Unique("c"), consumer, () => [target], settings, NullLogger.Instance);
        var calls = 0;
        var timeouts = new ConcurrentQueue<TimeSpan>();
        committer.Committer = (_, timeout) =>
        {
            // An Ask to a dead node: nothing comes back before the timeout.
            Interlocked.Increment(ref calls);
            timeouts.Enqueue(timeout);
            Thread.Sleep(timeout);
            throw new TimeoutException("no answer");
        };

        target.Mark(5);
        await WaitUntilAsync(() => Volatile.Read(ref calls) > 0, "a commit to be under way");
        var lookup = committer.LookupCommittedAsync(new TopicPartition(topic, 0), CancellationToken.None);

        // Bounded well below the final-commit timeout (30 s), well above the member commit timeout (300 ms).
        Assert.Equal(-1, await lookup.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.All(timeouts, t => Assert.Equal(settings.MemberCommitTimeout, t));
        Assert.Null(target.CommittedOffset);
        committer.Dispose();
    }

    [Fact]
    public async Task Without_a_member_it_commits_through_the_consumer_and_reads_the_committed_offsets_back()
    {
        var topic = Unique("commit");
        _cluster.CreateTopic(topic, 2);
        var group = Unique("g");
        using var consumer = Consumer(_cluster.Bootstrap, group);
        var target = new Target(topic, 1, epoch: 0);
        using var committer = Committer(consumer, target);

        Assert.Equal(-1, await committer.LookupCommittedAsync(new TopicPartition(topic, 1), CancellationToken.None));
        target.Mark(41);
        await WaitUntilAsync(() => target.CommittedOffset == 42, "the mark to be committed");

        Assert.Equal(42, await committer.LookupCommittedAsync(new TopicPartition(topic, 1), CancellationToken.None));
        Assert.Equal(-1, await committer.LookupCommittedAsync(new TopicPartition(topic, 0), CancellationToken.None));
        await committer.StopAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => committer.LookupCommittedAsync(new TopicPartition(topic, 0), CancellationToken.None));
    }
    [Fact]
    public async Task A_partition_whose_lookup_fails_does_not_hold_the_lookups_answered_with_it()
    {
        // K7: the lookups pending at one tick go to the broker in one OffsetFetch. A partition the broker answers with an
        // error (here a topic that does not exist; in production an unauthorised topic or an unstable offset) must not
        // keep the others waiting: before, every lookup of the batch was queued again, forever.
        var topic = Unique("commit");
        _cluster.CreateTopic(topic, 1);
        var group = Unique("g");
        using var consumer = Consumer(_cluster.Bootstrap, group);
        var target = new Target(topic, 0, epoch: 0);
        using var committer = Committer(consumer, target);
        target.Mark(41);
        await WaitUntilAsync(() => target.CommittedOffset == 42, "the mark to be committed");

        var failing = committer.LookupCommittedAsync(new TopicPartition(Unique("missing"), 0), CancellationToken.None);
        var answered = committer.LookupCommittedAsync(new TopicPartition(topic, 0), CancellationToken.None);

        Assert.Equal(42, await answered.WaitAsync(TimeSpan.FromSeconds(15)));
        Assert.False(failing.IsCompleted);
        await committer.StopAsync();
    }
}
