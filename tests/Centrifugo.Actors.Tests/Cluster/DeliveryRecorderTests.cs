using System.Diagnostics;
using Centrifugo.Actors.Testing.StandIn;

namespace Centrifugo.Actors.Tests.Cluster;

/// <summary>The figures the chaos tests compute from what the stand-in accepted.</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class DeliveryRecorderTests
{
    private static readonly long Second = Stopwatch.Frequency;

    private static DeliveryRecorder Recorder(int produced, params (long Seq, double At)[] deliveries)
    {
        var recorder = new DeliveryRecorder();
        for (var seq = 0; seq < produced; seq++)
        {
            recorder.Produced("s", seq, seq * Second / 10); // seq n produced at n × 100 ms
        }

        foreach (var (seq, at) in deliveries)
        {
            recorder.Delivered("s", seq, (long)(at * Second));
        }

        return recorder;
    }

    [Fact]
    public void Counts_loss_duplicates_first_delivery_reorderings_and_checks_the_order_of_last_applications()
    {
        // 0 1 2 3, then the window 2 3 again (a redelivered suffix: fine), 5 before 4 (first delivery reordered), 6 lost.
        var recorder = Recorder(7, (0, 1), (1, 1), (2, 1), (3, 1), (2, 2), (3, 2), (5, 3), (4, 3));

        var report = recorder.Report("s");

        Assert.Equal([6L], report.Lost);
        Assert.Equal(2, report.Duplicates);
        Assert.Equal(1, report.FirstDeliveryReorderings);
        Assert.Equal(1, report.LastApplicationReorderings); // 4's last application came after 5's
        Assert.False(report.LastApplicationInOrder);
        Assert.Equal(0, report.Unexpected);
    }

    [Fact]
    public void A_stale_redelivery_after_newer_commands_breaks_the_order_of_last_applications()
    {
        // 11 12 13 then 11 12 again: the last application of 13 precedes those of 11 and 12.
        var recorder = Recorder(3, (0, 1), (1, 1), (2, 1), (0, 2), (1, 2));

        var report = recorder.Report("s");

        Assert.Empty(report.Lost);
        Assert.Equal(2, report.Duplicates);
        Assert.Equal(0, report.FirstDeliveryReorderings);
        Assert.True(report.LastApplicationReorderings > 0);
        Assert.Equal("0@0 1@0 2@0 0@1000 1@1000", report.ReorderingContext);
    }

    [Fact]
    public void A_gap_runs_from_the_last_delivery_before_the_event_to_the_first_after_it_while_work_waits()
    {
        // Produced every 100 ms; delivered promptly until 1.0 s (seq 10), then nothing until 6.5 s.
        var recorder = Recorder(80, (0, 0.01), (5, 0.51), (10, 1.0), (11, 6.5), (12, 6.51));

        var gap = Assert.Single(recorder.GapsAround((long)(2 * Second), ["s"]));

        Assert.False(gap.Open);
        Assert.Equal(5.4, gap.Gap.TotalSeconds, 3); // from 1.1 s, when seq 11 was produced
    }

    [Fact]
    public void A_partition_without_waiting_work_has_no_gap_and_one_still_silent_is_open()
    {
        var recorder = new DeliveryRecorder();
        recorder.Produced("idle", 0, 0);
        recorder.Delivered("idle", 0, Second / 100);
        // Next command produced at 5 s, delivered 20 ms later: the idle time is not a gap.
        recorder.Produced("idle", 1, 5 * Second);
        recorder.Delivered("idle", 1, (5 * Second) + (Second / 50));
        recorder.Produced("stuck", 0, 0);

        var gaps = recorder.GapsAround(Second, ["idle", "stuck"]);

        Assert.Equal(0.02, gaps[0].Gap.TotalSeconds, 3);
        Assert.False(gaps[0].Open);
        Assert.True(gaps[1].Open);
    }

    [Fact]
    public void A_sigterm_window_includes_the_silence_after_the_drain()
    {
        // SIGTERM at 1 s; the node drains (delivery at 1.2 s) and exits at 2 s; the next owner delivers at 4 s.
        var recorder = Recorder(60, (0, 0.5), (9, 0.95), (10, 1.2), (11, 4.0));

        var gap = Assert.Single(recorder.GapsAround(Second, 2 * Second, ["s"]));

        Assert.Equal(2.8, gap.Gap.TotalSeconds, 3);
    }
}
