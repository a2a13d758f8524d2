using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Outbox;

namespace Centrifugo.Actors.Tests.Robustness;

/// <summary>The outbox partition's backoff climbs only while passes make no progress (Centrifugo's loop resets on success).</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class OutboxBackoffTests
{
    private static readonly DeliveryFailure Error100 = new(FailureKind.Temporary, "centrifugo error 100: internal server error");

    private static OutboxPassReport Failed(int delivered, int deadLettered = 0) => new(100, delivered, deadLettered, false, Error100, null);

    [Fact]
    public void Passes_without_progress_climb_to_the_cap()
    {
        var control = new OutboxPassControl();
        for (var i = 0; i < 12; i++)
        {
            control.After(Failed(delivered: 0), 100);
        }

        Assert.Equal(12, control.Retries);
        Assert.Equal(Backoff.Max, control.Backoff);
    }

    [Fact]
    public void A_failed_pass_that_delivered_a_prefix_retries_at_once_and_restarts_the_backoff()
    {
        var control = new OutboxPassControl();
        for (var i = 0; i < 12; i++)
        {
            control.After(Failed(delivered: 0), 100);
        }

        // One command in 60 answered error 100: each pass delivers the prefix before it, then fails.
        for (var i = 0; i < 20; i++)
        {
            control.After(Failed(delivered: 59), 100);
            Assert.Equal(0, control.Retries);
            Assert.Equal(TimeSpan.Zero, control.Backoff);
        }

        // The retried command fails again at the head of the next read (no progress): the backoff starts climbing.
        control.After(Failed(delivered: 0), 100);
        Assert.Equal(1, control.Retries);
        Assert.True(control.Backoff > TimeSpan.Zero);
    }

    [Fact]
    public void A_configuration_fault_after_a_prefix_still_backs_off()
    {
        var control = new OutboxPassControl();
        control.After(new OutboxPassReport(100, 10, 0, false, new DeliveryFailure(FailureKind.Configuration, "401"), null), 100);
        Assert.Equal(1, control.Retries);
        Assert.True(control.Backoff > TimeSpan.Zero);
    }

    [Fact]
    public void Dead_lettered_rows_count_as_progress_and_database_errors_do_not()
    {
        var control = new OutboxPassControl();
        control.After(Failed(delivered: 0), 100);
        control.After(Failed(delivered: 0), 100);
        control.After(Failed(delivered: 0, deadLettered: 1), 100);
        Assert.Equal(0, control.Retries);

        control.After(new OutboxPassReport(0, 0, 0, false, null, "connection refused"), 100);
        control.After(new OutboxPassReport(0, 0, 0, false, null, "connection refused"), 100);
        Assert.Equal(2, control.Retries);

        control.After(new OutboxPassReport(100, 100, 0, false, null, null), 100);
        Assert.Equal(0, control.Retries);
        Assert.Equal(TimeSpan.Zero, control.Backoff);
    }
}
