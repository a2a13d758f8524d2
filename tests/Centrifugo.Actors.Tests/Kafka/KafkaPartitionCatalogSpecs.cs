using Akka.Actor;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Tests.Sharding;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Kafka;

/// <summary>The keeper's view of a kafka consumer's partitions, against an actor standing in for the group member.</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class KafkaPartitionCatalogSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(ActorSpecs.Config, output)
{
    /// <summary>Answers "not assigned yet" to the first asks (as many as it is told), then owns partitions 0 and 1.</summary>
    private sealed class FakeMember : ReceiveActor
    {
        public FakeMember(int unassigned, Action asked)
        {
            var left = unassigned;
            Receive<GetOwnedKafkaPartitions>(_ =>
            {
                asked();
                Sender.Tell(left-- > 0
                    ? new OwnedKafkaPartitions([], Assigned: false)
                    : new OwnedKafkaPartitions([new("t", 0), new("t", 1)]));
            });
        }
    }

    [Fact]
    public async Task A_member_that_just_moved_is_asked_again_until_the_group_assigned_it_instead_of_answering_nothing()
    {
        // After a kill of the member's node the keeper starts on the next node together with the member, before the group
        // assigned that member anything: answering "nothing" left partitions the coordinator had lost waiting 5 s.
        var asks = 0;
        var member = Sys.ActorOf(Props.Create(() => new FakeMember(3, () => Interlocked.Increment(ref asks))));
        var catalog = new KafkaPartitionCatalog("k", () => member);

        var ids = await catalog.EntityIdsAsync(CancellationToken.None);

        Assert.Equal(["kafka:k:t:0", "kafka:k:t:1"], ids);
        Assert.Equal(4, Volatile.Read(ref asks));
    }

    [Fact]
    public async Task Without_a_member_yet_the_catalog_answers_nothing_at_once()
    {
        var catalog = new KafkaPartitionCatalog("k", () => null);
        Assert.Empty(await catalog.EntityIdsAsync(CancellationToken.None));
    }
}
