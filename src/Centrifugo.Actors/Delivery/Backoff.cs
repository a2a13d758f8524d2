namespace Centrifugo.Actors.Delivery;

/// <summary>
/// Centrifugo's consumer retry backoff: (10 ms + 0–9 ms jitter) × 2^retries, capped at 5 s.
/// Callers pass retries already incremented (first retry = 1).
/// </summary>
internal static class Backoff
{
    public static readonly TimeSpan Max = TimeSpan.FromSeconds(5);

    public static TimeSpan Next(int retries)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(retries);
        if (retries >= 10)
        {
            return Max; // 19 ms × 2^9 ≈ 9.7 s > cap already; avoids overflow for large counts
        }
        var baseMs = 10 + Random.Shared.Next(0, 10);
        var ms = baseMs * (1L << retries);
        return ms >= Max.TotalMilliseconds ? Max : TimeSpan.FromMilliseconds(ms);
    }
}
