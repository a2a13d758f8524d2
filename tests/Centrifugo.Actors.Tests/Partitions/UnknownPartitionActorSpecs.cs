using Akka.Actor;
using Centrifugo.Actors.Partitions;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Partitions;

/// <summary>Actor-level specs of an entity this node has no configuration for.</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class UnknownPartitionActorSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(ActorSpecs.Config, output)
{
    [Fact]
    public void An_entity_this_node_has_no_configuration_for_stops_on_the_hand_off_message()
    {
        var entity = Sys.ActorOf(UnknownPartitionActor.Props("pg:gone:0", NullLogger.Instance));
        Watch(entity);

        entity.Tell(new WakePartition("pg:gone:0"));
        entity.Tell(StopPartition.Instance);

        ExpectTerminated(entity, TimeSpan.FromSeconds(5));
    }
}
