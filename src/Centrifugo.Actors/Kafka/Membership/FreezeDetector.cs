using System.Diagnostics;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// Notices freezes of this process (SIGSTOP, a paused VM, a stop-the-world pause) as gaps between its own ticks
/// (<see cref="Stopwatch"/> timestamps, every 100 ms from the hub's tick thread). A gap of
/// <see cref="KafkaSettings.FreezeThreshold"/> or more suspends delivery for <see cref="KafkaSettings.SuspensionAfterFreeze"/>:
/// the group may have dropped this member meanwhile, and librdkafka learns it at its next heartbeat. Until the next tick
/// after a freeze, the age of the last tick says the same. Thread-safe.
/// </summary>
internal sealed class FreezeDetector(TimeSpan threshold, TimeSpan suspension)
{
    private readonly long _threshold = Ticks(threshold);
    private readonly long _suspension = Ticks(suspension);
    private long _lastTick = Stopwatch.GetTimestamp();
    private long _suspendedUntil;

    /// <summary>A tick at <paramref name="timestamp"/>; returns the gap before it when that gap was a freeze.</summary>
    public TimeSpan? Tick(long timestamp)
    {
        var gap = timestamp - Interlocked.Exchange(ref _lastTick, timestamp);
        if (gap < _threshold)
        {
            return null;
        }
        Volatile.Write(ref _suspendedUntil, timestamp + _suspension);
        return TimeSpan.FromSeconds((double)gap / Stopwatch.Frequency);
    }

    /// <summary>True when delivery may go on at <paramref name="timestamp"/>: no freeze now, and none just before.</summary>
    public bool IsFresh(long timestamp) =>
        timestamp - Volatile.Read(ref _lastTick) < _threshold && timestamp >= Volatile.Read(ref _suspendedUntil);

    private static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);
}
