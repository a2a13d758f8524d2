using Centrifugo.Actors.Delivery;

namespace Centrifugo.Actors.Partitions;

/// <summary>
/// The wait before the next pass after a pass, for every source: a pass that did not fail, or a temporary failure
/// after progress (a delivered or dead-lettered prefix), goes on at once; only consecutive passes that move nothing (or
/// stall on a configuration fault) climb Centrifugo's capped exponential backoff. An immediate retry is always paid for
/// by progress, so a backlog under a 1-2 % error-100 rate drains at the pace of Centrifugo, not of the backoff's cap
/// (docs/benchmarks.md, "Error rate"). Owned by one loop.
/// </summary>
internal sealed class RetryPolicy
{
    /// <summary>Consecutive passes that failed without progress.</summary>
    public int Failures { get; private set; }

    /// <summary>The wait before the next pass.</summary>
    public TimeSpan Delay { get; private set; }

    public void After(PassReport pass)
    {
        var progress = pass.Delivered + pass.DeadLettered > 0;
        if (!pass.Failed || (progress && pass.Failure is { Kind: FailureKind.Temporary }))
        {
            Failures = 0;
            Delay = TimeSpan.Zero;
            return;
        }
        Failures++;
        Delay = Backoff.Next(Failures);
    }
}
