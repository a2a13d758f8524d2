using System.Diagnostics;
using Akka.Actor;
using Centrifugo.Actors.Kafka;

namespace Centrifugo.Actors.Tests.Kafka;

/// <summary>When a new group member may give fresh grants, from what its node saw of the previous member's node.</summary>
[Trait("Category", "Fast")]
public sealed class PreviousMemberWatchTests
{
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(3);
    private static readonly Address A = new("akka.tcp", "centrifugo-actors", "127.0.0.1", 4053);
    private static readonly Address B = new("akka.tcp", "centrifugo-actors", "127.0.0.1", 4054);

    private static long Ticks(double seconds) => (long)(seconds * Stopwatch.Frequency);

    [Fact]
    public void A_first_start_or_a_graceful_hand_over_waits_a_whole_ttl()
    {
        var now = Ticks(1000);
        Assert.Equal(now + Ticks(3), PreviousMemberWatch.AuthorityFrom([], now, Ttl));
        // The previous instance left gracefully: it answered renewals until a moment ago.
        Assert.Equal(now + Ticks(3), PreviousMemberWatch.AuthorityFrom([new(A, false, now - Ticks(1), null)], now, Ttl));
        // Downed, but one other removal was graceful, or the downed one was never seen unreachable here.
        Assert.Equal(now + Ticks(3), PreviousMemberWatch.AuthorityFrom(
            [new(A, true, now - Ticks(1), now - Ticks(8)), new(B, false, now - Ticks(2), null)], now, Ttl));
        Assert.Equal(now + Ticks(3), PreviousMemberWatch.AuthorityFrom([new(A, true, now - Ticks(1), null)], now, Ttl));
    }

    [Fact]
    public void After_a_downing_the_wait_ends_one_ttl_plus_the_detection_skew_after_the_node_was_seen_unreachable()
    {
        var now = Ticks(1000);
        // Seen unreachable 7 s ago (then the downing decision, removal, this start): its grants ran out long ago.
        Assert.Equal(now, PreviousMemberWatch.AuthorityFrom([new(A, true, now - Ticks(1), now - Ticks(7))], now, Ttl));
        // Seen unreachable 2.5 s ago (a short stable-after): 3 s + 1 s skew after that.
        Assert.Equal(now + Ticks(1.5), PreviousMemberWatch.AuthorityFrom([new(A, true, now - Ticks(0.5), now - Ticks(2.5))], now, Ttl));
        // Never later than a whole TTL.
        Assert.Equal(now + Ticks(3), PreviousMemberWatch.AuthorityFrom([new(A, true, now, now)], now, Ttl));
        // Several downed: the latest one counts.
        Assert.Equal(now + Ticks(1), PreviousMemberWatch.AuthorityFrom(
            [new(A, true, now - Ticks(1), now - Ticks(9)), new(B, true, now - Ticks(0.5), now - Ticks(3))], now, Ttl));
    }

    [Fact]
    public void A_graceful_removal_whose_grants_have_long_run_out_does_not_delay_a_member_starting_after_a_downing()
    {
        var now = Ticks(1000);
        // A rolling restart removed B 20 s ago; A (the member's node) was killed, seen unreachable 7 s ago and downed.
        Assert.Equal(now, PreviousMemberWatch.AuthorityFrom(
            [new(B, false, now - Ticks(20), null), new(A, true, now - Ticks(1), now - Ticks(7))], now, Ttl));
        // A removal not seen unreachable here counts until one TTL plus the removal slack after it.
        Assert.Equal(now + Ticks(1), PreviousMemberWatch.AuthorityFrom(
            [new(B, false, now - Ticks(7), null), new(A, true, now - Ticks(1), now - Ticks(7))], now, Ttl));
    }

    [Fact]
    public void The_watch_remembers_when_a_node_became_unreachable_until_it_is_removed()
    {
        var watch = new PreviousMemberWatch();
        var start = Stopwatch.GetTimestamp();
        watch.Unreachable(B, start);
        watch.Reachable(B); // came back: no longer counts
        watch.Unreachable(A, start);
        watch.Removed(A, downed: true, start + Ticks(5));
        Assert.Equal(start + Ticks(4), watch.AuthorityFrom(start + Ticks(2), Ttl)); // unreachable at start: + 3 s ttl + 1 s skew
        var now = start + Ticks(6);
        Assert.Equal(now, watch.AuthorityFrom(now, Ttl));

        watch.Removed(B, downed: true, start + Ticks(5.5)); // removed without being seen unreachable here
        Assert.Equal(now + Ticks(3), watch.AuthorityFrom(now, Ttl));
    }
}
