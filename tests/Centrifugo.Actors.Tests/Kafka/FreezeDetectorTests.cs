using System.Diagnostics;
using Centrifugo.Actors.Kafka;

namespace Centrifugo.Actors.Tests.Kafka;

/// <summary>The freeze detector on synthetic timestamps: gaps between ticks, the suspension after one, a stale last tick.</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class FreezeDetectorTests
{
    private static readonly TimeSpan Threshold = TimeSpan.FromMilliseconds(1500);
    private static readonly TimeSpan Suspension = TimeSpan.FromSeconds(2);

    private static long At(long start, double seconds) => start + (long)(seconds * Stopwatch.Frequency);

    [Fact]
    public void Regular_ticks_keep_delivery_going()
    {
        var detector = new FreezeDetector(Threshold, Suspension);
        var start = Stopwatch.GetTimestamp();
        for (var i = 1; i <= 50; i++)
        {
            Assert.Null(detector.Tick(At(start, i * 0.1)));
            Assert.True(detector.IsFresh(At(start, i * 0.1 + 0.05)));
        }
    }

    [Fact]
    public void A_gap_over_the_threshold_suspends_delivery_for_the_suspension_after_the_late_tick()
    {
        var detector = new FreezeDetector(Threshold, Suspension);
        var start = Stopwatch.GetTimestamp();
        detector.Tick(At(start, 0.1));

        var gap = detector.Tick(At(start, 3.1));
        Assert.NotNull(gap);
        Assert.InRange(gap!.Value.TotalSeconds, 2.99, 3.01);
        Assert.False(detector.IsFresh(At(start, 3.15)));
        for (var t = 3.2; t < 5.05; t += 0.1)
        {
            Assert.Null(detector.Tick(At(start, t)));
        }
        Assert.False(detector.IsFresh(At(start, 5.05))); // ticking again, but still within 2 s of the late tick
        Assert.Null(detector.Tick(At(start, 5.1)));
        Assert.True(detector.IsFresh(At(start, 5.15)));
    }

    [Fact]
    public void A_frozen_tick_thread_makes_delivery_stop_before_the_late_tick_comes()
    {
        var detector = new FreezeDetector(Threshold, Suspension);
        var start = Stopwatch.GetTimestamp();
        detector.Tick(At(start, 0.1));
        Assert.True(detector.IsFresh(At(start, 1.5)));
        Assert.False(detector.IsFresh(At(start, 1.7))); // 1.6 s since the last tick, nobody ticked yet
    }
}
