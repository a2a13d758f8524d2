using Centrifugo.Actors.Outbox;
using Centrifugo.Actors.Partitions;

namespace Centrifugo.Actors.Tests.Outbox;

/// <summary>The registry through which this node's wake sources reach the outbox partitions running here.</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class LocalPartitionWakesTests
{
    [Fact]
    public void Local_wakes_reach_only_the_partitions_running_here()
    {
        var wakes = new LocalPartitionWakes();
        var old = new WakeSignal();
        var current = new WakeSignal();
        Assert.False(wakes.Any);

        wakes.Register(3, old);
        wakes.Register(3, current); // the entity restarted here: its new signal replaces the old one
        wakes.Unregister(3, old);   // the old incarnation's late unregister must not remove the new signal

        Assert.True(wakes.Any);
        Assert.True(wakes.Wake(3));
        Assert.False(wakes.Wake(4));
        wakes.Unregister(3, current);
        Assert.False(wakes.Any);
        Assert.False(wakes.Wake(3));
    }
}
