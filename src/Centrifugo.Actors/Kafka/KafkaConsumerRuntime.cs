using Centrifugo.Actors.Configuration;

namespace Centrifugo.Actors.Kafka;

/// <summary>What every partition entity of one kafka consumer shares on a node (created and disposed by NodeRuntime).</summary>
internal sealed class KafkaConsumerRuntime(
    string consumer,
    KafkaConsumerOptions options,
    KafkaConsumerHub hub,
    KafkaDeadLetterProducer deadLetters,
    KafkaRecordProcessor processor,
    TimeSpan drainTimeout) : IAsyncDisposable
{
    public string Consumer { get; } = consumer;
    public KafkaConsumerOptions Options { get; } = options;
    public KafkaConsumerHub Hub { get; } = hub;
    public KafkaRecordProcessor Processor { get; } = processor;
    /// <summary>How long a stopping entity lets its in-flight batch finish before abandoning it (nothing more marked).</summary>
    public TimeSpan DrainTimeout { get; } = drainTimeout;

    /// <summary>Proxy to this consumer's group member singleton; set once the actor system runs (null before).</summary>
    public Akka.Actor.IActorRef? Member { get; set; }

    /// <summary>Timings of the group member and its grants (shared by the member and the entities).</summary>
    public KafkaGroupMemberSettings MemberSettings { get; init; } = new();

    private readonly Lock _leaving = new();
    private Task _memberLeave = Task.CompletedTask;

    /// <summary>
    /// The group member instance on this node stopped and is leaving the consumer group (a round trip to the group
    /// coordinator, after the actor system let go of it); <see cref="DisposeAsync"/> waits for it, so the process does
    /// not exit before and leave a ghost member the group would wait a session timeout for.
    /// </summary>
    public void TrackMemberLeave(Task leave)
    {
        lock (_leaving)
        {
            _memberLeave = Task.WhenAll(_memberLeave, leave);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Task leave;
        lock (_leaving)
        {
            leave = _memberLeave;
        }
        try
        {
            await leave.WaitAsync(MemberLeaveBudget);
        }
        catch (TimeoutException)
        {
            // The group expires the member after its session timeout instead.
        }
        catch (Exception) when (leave.IsFaulted)
        {
            // Logged by the member; nothing more to do here.
        }

        // Leases first (final commits), then the dead-letter producer (flush).
        await Hub.DisposeAsync();
        deadLetters.Dispose();
    }

    /// <summary>Longest the node waits at exit for its group member to leave the group.</summary>
    internal static TimeSpan MemberLeaveBudget { get; } = TimeSpan.FromSeconds(10);
}
