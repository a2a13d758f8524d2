using System.Collections.Concurrent;
using Centrifugo.Actors.Kafka;
using Confluent.Kafka;

namespace Centrifugo.Actors.Tests.Kafka;

[Trait("Category", "Fast")]
public sealed class PollCommandsTests
{
    [Fact]
    public async Task A_command_that_queues_itself_again_runs_once_per_round_instead_of_spinning_the_poll_thread()
    {
        // K9: a Resume that keeps failing re-queues itself (KafkaPartitionLease.ResumeIfDrained → RetryResume). The poll
        // thread must get back to reading (and to the other partitions) between attempts.
        var commands = new ConcurrentQueue<Action>();
        var runs = 0;
        Action retrying = null!;
        retrying = () =>
        {
            runs++;
            commands.Enqueue(retrying);
        };
        var other = 0;
        commands.Enqueue(retrying);
        commands.Enqueue(() => other++);

        var round = Task.Run(() => KafkaConsumerHub.RunQueued(commands, _ => { }));
        await round.WaitAsync(TimeSpan.FromSeconds(5)); // a spinning round never returns (TimeoutException)
        Assert.Equal((1, 1), (runs, other));
        Assert.Single(commands); // the retry waits for the next round

        KafkaConsumerHub.RunQueued(commands, _ => { });
        Assert.Equal(2, runs);
    }

    [Fact]
    public void A_failing_command_is_reported_and_the_rest_of_the_round_still_runs()
    {
        var commands = new ConcurrentQueue<Action>();
        var failures = new List<KafkaException>();
        var ran = false;
        commands.Enqueue(() => throw new KafkaException(ErrorCode.Local_UnknownPartition));
        commands.Enqueue(() => ran = true);

        KafkaConsumerHub.RunQueued(commands, failures.Add);

        Assert.True(ran);
        Assert.Equal(ErrorCode.Local_UnknownPartition, Assert.Single(failures).Error.Code);
    }
}
