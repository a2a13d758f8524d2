namespace Centrifugo.Actors.Tests;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class SmokeTests
{
    [Fact]
    public void Backoff_is_capped_at_five_seconds() =>
        Assert.Equal(Centrifugo.Actors.Delivery.Backoff.Max, Centrifugo.Actors.Delivery.Backoff.Next(30));
}
