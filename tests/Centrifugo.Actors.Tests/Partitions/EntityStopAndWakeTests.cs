using Centrifugo.Actors.Partitions;

namespace Centrifugo.Actors.Tests.Partitions;

/// <summary>The two-stage stop every partition entity follows, and the coalescing wake-up signal.</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class EntityStopAndWakeTests
{
    [Fact]
    public async Task A_stop_ends_the_waits_at_once_and_the_work_after_the_drain_budget()
    {
        using var stop = new EntityStop();
        Assert.False(stop.Waits.IsCancellationRequested);

        stop.Begin(TimeSpan.FromMilliseconds(100));

        Assert.True(stop.Waits.IsCancellationRequested);
        Assert.False(stop.Work.IsCancellationRequested);
        await Poll.UntilAsync(() => stop.Work.IsCancellationRequested, "work cancelled after the drain budget");
    }

    [Fact]
    public void An_abort_cancels_everything_now()
    {
        using var stop = new EntityStop();
        stop.Begin(TimeSpan.FromHours(1));

        stop.Abort();

        Assert.True(stop.Waits.IsCancellationRequested);
        Assert.True(stop.Work.IsCancellationRequested);
    }

    [Fact]
    public async Task Many_wakes_while_nobody_waits_give_one_early_wake_up()
    {
        var signal = new WakeSignal();
        signal.Set();
        signal.Set();
        signal.Set();

        Assert.True(await signal.WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None));
        Assert.False(await signal.WaitAsync(TimeSpan.FromMilliseconds(30), CancellationToken.None));
    }

    [Fact]
    public async Task A_wake_ends_a_wait_in_progress()
    {
        var signal = new WakeSignal();
        var waiting = signal.WaitAsync(TimeSpan.FromMinutes(1), CancellationToken.None);
        Assert.False(waiting.IsCompleted);

        signal.Set();

        Assert.True(await waiting.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task A_stop_ends_the_idle_wait()
    {
        using var stop = new EntityStop();
        var signal = new WakeSignal();
        var waiting = signal.WaitAsync(TimeSpan.FromMinutes(1), stop.Waits);

        stop.Begin(TimeSpan.FromSeconds(5));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
