using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Outbox;
using Centrifugo.Actors.Partitions;

namespace Centrifugo.Actors.Tests.Partitions;

/// <summary>
/// Every partition's backoff climbs only while passes make no progress (Centrifugo's loop resets on success); the same
/// policy for both sources.
/// </summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class RetryPolicyTests
{
    private static readonly DeliveryFailure Error100 = new(FailureKind.Temporary, "centrifugo error 100: internal server error");

    private static OutboxPassReport Failed(int delivered, int deadLettered = 0) => new(100, delivered, deadLettered, false, Error100, null);

    [Fact]
    public void Passes_without_progress_climb_to_the_cap()
    {
        var control = new RetryPolicy();
        for (var i = 0; i < 12; i++)
        {
            control.After(Failed(delivered: 0));
        }

        Assert.Equal(12, control.Failures);
        Assert.Equal(Backoff.Max, control.Delay);
    }

    [Fact]
    public void A_failed_pass_that_delivered_a_prefix_retries_at_once_and_restarts_the_backoff()
    {
        var control = new RetryPolicy();
        for (var i = 0; i < 12; i++)
        {
            control.After(Failed(delivered: 0));
        }

        // One command in 60 answered error 100: each pass delivers the prefix before it, then fails.
        for (var i = 0; i < 20; i++)
        {
            control.After(Failed(delivered: 59));
            Assert.Equal(0, control.Failures);
            Assert.Equal(TimeSpan.Zero, control.Delay);
        }

        // The retried command fails again at the head of the next read (no progress): the backoff starts climbing.
        control.After(Failed(delivered: 0));
        Assert.Equal(1, control.Failures);
        Assert.True(control.Delay > TimeSpan.Zero);
    }

    [Fact]
    public void A_configuration_fault_after_a_prefix_still_backs_off()
    {
        var control = new RetryPolicy();
        control.After(new OutboxPassReport(100, 10, 0, false, new DeliveryFailure(FailureKind.Configuration, "401"), null));
        Assert.Equal(1, control.Failures);
        Assert.True(control.Delay > TimeSpan.Zero);
    }

    [Fact]
    public void Dead_lettered_rows_count_as_progress_and_database_errors_do_not()
    {
        var control = new RetryPolicy();
        control.After(Failed(delivered: 0));
        control.After(Failed(delivered: 0));
        control.After(Failed(delivered: 0, deadLettered: 1));
        Assert.Equal(0, control.Failures);

        control.After(new OutboxPassReport(0, 0, 0, false, null, "connection refused"));
        control.After(new OutboxPassReport(0, 0, 0, false, null, "connection refused"));
        Assert.Equal(2, control.Failures);

        control.After(new OutboxPassReport(100, 100, 0, false, null, null));
        Assert.Equal(0, control.Failures);
        Assert.Equal(TimeSpan.Zero, control.Delay);
    }

    [Fact]
    public void A_kafka_attempt_is_judged_like_an_outbox_pass()
    {
        var control = new RetryPolicy();
        control.After(new PassReport(10, 0, 0, Error100));
        control.After(new PassReport(10, 0, 0, Error100));
        Assert.Equal(2, control.Failures);

        // The retried attempt got past the failing record, and the next one failed: at once again.
        control.After(new PassReport(10, 4, 0, Error100));
        Assert.Equal(0, control.Failures);
        Assert.Equal(TimeSpan.Zero, control.Delay);
    }
}
