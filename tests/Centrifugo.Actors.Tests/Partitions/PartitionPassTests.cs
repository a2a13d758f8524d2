using System.Text;
using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Partitions;

namespace Centrifugo.Actors.Tests.Partitions;

/// <summary>The partition entity's core step, without I/O: which commands go out, and how a delivery settles the batch.</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class PartitionPassTests
{
    private static readonly DeliveryFailure Error100 = new(FailureKind.Temporary, "centrifugo error 100");

    private static DecodeResult Cmd(int i) =>
        DecodeResult.Ok(new ApiCommand(ApiMethods.Publish, Encoding.UTF8.GetBytes($$"""{"channel":"c","data":{{i}}}""")));

    private static DecodeResult Bad(string reason) => DecodeResult.Reject(reason);

    private static DeliveryResult Result(DeliveryFailure? failure, params CommandOutcome[] completed) => new(completed, failure);

    [Fact]
    public void Plan_keeps_item_order_and_skips_rejected_and_finished_items()
    {
        DecodeResult[] items = [Cmd(0), Bad("malformed"), Cmd(2), Cmd(3), Bad("unsupported"), Cmd(5)];
        var plan = PartitionPass.Plan(items);
        Assert.Equal([0, 2, 3, 5], plan.CommandItems);
        Assert.Equal(items.Where(i => i.Command is not null).Select(i => i.Command!.Value), plan.Commands);

        var resumed = PartitionPass.Plan(items, start: 2, finished: [true, true, false, true, false, false]);
        Assert.Equal(2, resumed.Start);
        Assert.Equal([2, 5], resumed.CommandItems);
    }

    [Fact]
    public void A_complete_delivery_finishes_every_item_with_rejections_and_refusals_dead_lettered_in_place()
    {
        DecodeResult[] items = [Cmd(0), Bad("malformed"), Cmd(2), Cmd(3), Bad("unsupported")];
        var plan = PartitionPass.Plan(items);
        var settled = PartitionPass.Settle(items, plan,
            Result(null, CommandOutcome.Accepted, CommandOutcome.Rejected(102, "centrifugo error 102: unknown channel"),
                new CommandOutcome(false, 107)));

        Assert.Equal(5, settled.CompletedEnd);
        Assert.Null(settled.Failure);
        Assert.Equal([0], settled.Delivered);
        Assert.Equal(
            [new ItemDeadLetter(1, "malformed"), new ItemDeadLetter(2, "centrifugo error 102: unknown channel"),
                new ItemDeadLetter(3, "centrifugo error 107"), new ItemDeadLetter(4, "unsupported")],
            settled.DeadLetters);
    }

    [Fact]
    public void A_failure_ends_the_completed_prefix_at_the_failed_command_and_leaves_later_rejections_for_the_next_pass()
    {
        DecodeResult[] items = [Cmd(0), Bad("early"), Cmd(2), Cmd(3), Bad("late"), Cmd(5)];
        var plan = PartitionPass.Plan(items);
        // Centrifugo completed commands 0 and 2; command 3 failed with error 100.
        var settled = PartitionPass.Settle(items, plan, Result(Error100, CommandOutcome.Accepted, CommandOutcome.Accepted));

        Assert.Equal(3, settled.CompletedEnd);
        Assert.Same(Error100, settled.Failure);
        Assert.Equal([0, 2], settled.Delivered);
        Assert.Equal([new ItemDeadLetter(1, "early")], settled.DeadLetters);
    }

    [Fact]
    public void A_failure_at_the_first_command_finishes_only_the_rejections_before_it()
    {
        DecodeResult[] items = [Bad("first"), Cmd(1), Cmd(2)];
        var settled = PartitionPass.Settle(items, PartitionPass.Plan(items), Result(Error100));
        Assert.Equal(1, settled.CompletedEnd);
        Assert.Empty(settled.Delivered);
        Assert.Equal([new ItemDeadLetter(0, "first")], settled.DeadLetters);
    }

    [Fact]
    public void A_batch_without_commands_settles_every_item_as_a_dead_letter()
    {
        DecodeResult[] items = [Bad("a"), Bad("b")];
        var plan = PartitionPass.Plan(items);
        Assert.Empty(plan.Commands);
        var settled = PartitionPass.Settle(items, plan, Result(null));
        Assert.Equal(2, settled.CompletedEnd);
        Assert.Equal(["a", "b"], settled.DeadLetters.Select(d => d.Reason));
    }

    [Fact]
    public void A_resumed_pass_settles_only_the_unfinished_items_from_its_start()
    {
        // Item 1's dead-letter copy failed in the previous pass (Kafka): 0 and 2 were delivered then, 1 and 3.. are open.
        DecodeResult[] items = [Cmd(0), Bad("copy failed before"), Cmd(2), Cmd(3), Cmd(4)];
        bool[] finished = [true, false, true, false, false];
        var plan = PartitionPass.Plan(items, start: 1, finished);
        Assert.Equal([3, 4], plan.CommandItems);

        var settled = PartitionPass.Settle(items, plan, Result(Error100, CommandOutcome.Accepted), finished);
        Assert.Equal(4, settled.CompletedEnd);
        Assert.Equal([3], settled.Delivered);
        Assert.Equal([new ItemDeadLetter(1, "copy failed before")], settled.DeadLetters);
        Assert.Same(Error100, settled.Failure);
    }

    [Fact]
    public void A_report_failed_when_either_a_delivery_failure_or_a_source_error_ended_it()
    {
        Assert.False(new PassReport(10, 10, 0, null).Failed);
        Assert.True(new PassReport(10, 3, 0, Error100).Failed);
        Assert.True(new PassReport(0, 0, 0, null, "connection refused").Failed);
        PassReport outbox = new Centrifugo.Actors.Outbox.OutboxPassReport(0, 0, 0, false, null, "connection refused");
        Assert.Equal("connection refused", outbox.SourceError);
        Assert.True(outbox.Failed);
    }
}
