using Centrifugo.Actors.Delivery;

namespace Centrifugo.Actors.Tests.Delivery;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class BackoffTests
{
    [Fact]
    public void Backoff_is_capped_at_five_seconds() => Assert.Equal(Backoff.Max, Backoff.Next(30));
}
