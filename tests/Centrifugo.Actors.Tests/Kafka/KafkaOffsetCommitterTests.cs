using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Testing.Kafka;
using Confluent.Kafka;
using Microsoft.Extensions.Logging.Abstractions;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;

namespace Centrifugo.Actors.Tests.Kafka;

public sealed class KafkaOffsetCommitterTests : IDisposable
{
    private static readonly KafkaSettings Fast = new()
    {
        CommitInterval = TimeSpan.FromMilliseconds(100),
        CommittedLookupTimeout = TimeSpan.FromSeconds(2),
        FinalCommitTimeout = TimeSpan.FromMilliseconds(500),
    };

    private readonly KafkaMockCluster _cluster = KafkaMockCluster.Create();

    public void Dispose() => _cluster.Dispose();

    private sealed class Target(string topic, int partition) : IKafkaCommitTarget
    {
        private long _marked = -1;
        private long _committed = -1;

        public TopicPartition TopicPartition { get; } = new(topic, partition);
        public long? MarkedOffset => Interlocked.Read(ref _marked) is var m and >= 0 ? m : null;
        public long? CommittedOffset => Interlocked.Read(ref _committed) is var c and >= 0 ? c : null;

        public void Mark(long offset) => Interlocked.Exchange(ref _marked, offset);

        public long? PendingCommit()
        {
            var next = Interlocked.Read(ref _marked) + 1;
            return next > 0 && next > Interlocked.Read(ref _committed) ? next : null;
        }

        public void Committed(long next) => Interlocked.Exchange(ref _committed, Math.Max(next, Interlocked.Read(ref _committed)));
    }

    private KafkaOffsetCommitter Committer(IConsumer<byte[]?, byte[]?> consumer, params Target[] targets) =>
        new(Unique("c"), consumer, () => targets, Fast, NullLogger.Instance);

    [Fact]
    public async Task A_final_commit_answers_true_once_committed_and_false_when_it_cannot_commit_within_its_timeout()
    {
        var topic = Unique("commit");
        _cluster.CreateTopic(topic, 1);
        using var consumer = Consumer(_cluster.Bootstrap, Unique("g"));
        var target = new Target(topic, 0);
        using var committer = Committer(consumer, target);

        target.Mark(9);
        Assert.True(await committer.CommitFinalAsync(target));
        Assert.Equal(10, target.CommittedOffset);

        // The group coordinator refuses every commit: the final commit gives up after its timeout.
        _cluster.PushRequestErrors(8, Enumerable.Repeat(16, 200).ToArray()); // OffsetCommit: NOT_COORDINATOR
        target.Mark(19);
        Assert.False(await committer.CommitFinalAsync(target).WaitAsync(TimeSpan.FromSeconds(20)));
        _cluster.ClearRequestErrors(8);
    }

    [Fact]
    public async Task Marks_are_committed_through_the_consumer_and_read_back()
    {
        var topic = Unique("commit");
        _cluster.CreateTopic(topic, 2);
        var group = Unique("g");
        using var consumer = Consumer(_cluster.Bootstrap, group);
        var target = new Target(topic, 1);
        using var committer = Committer(consumer, target);

        Assert.Equal(-1, await committer.LookupCommittedAsync(new TopicPartition(topic, 1), CancellationToken.None));
        target.Mark(41);
        await WaitUntilAsync(() => target.CommittedOffset == 42, "the mark to be committed");

        Assert.Equal(42, await committer.LookupCommittedAsync(new TopicPartition(topic, 1), CancellationToken.None));
        Assert.Equal(-1, await committer.LookupCommittedAsync(new TopicPartition(topic, 0), CancellationToken.None));
        await committer.StopAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() =>
            committer.LookupCommittedAsync(new TopicPartition(topic, 0), CancellationToken.None));
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
        var target = new Target(topic, 0);
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
