using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Centrifugo.Actors.Testing.StandIn;

/// <summary>One accepted command of a stream: its sequence number and when the stand-in accepted it (Stopwatch ticks).</summary>
internal readonly record struct Delivery(long Seq, long At);

/// <summary>What happened to one stream (a partition's channel) over a run.</summary>
internal sealed record StreamReport(
    string Stream, long Produced, long Deliveries, long Distinct, IReadOnlyList<long> Lost,
    long Duplicates, long FirstDeliveryReorderings, long LastApplicationReorderings, long Unexpected)
{
    /// <summary>The deliveries around the first last-application reordering ("seq@ms since the stream's first delivery"), or "".</summary>
    public string ReorderingContext { get; init; } = "";

    public bool LastApplicationInOrder => LastApplicationReorderings == 0;
}

/// <summary>
/// The longest silence of one stream around an event while it had work waiting (see
/// <see cref="DeliveryRecorder.GapsAround(long, long, IEnumerable{string})"/>). <see cref="Open"/> = no delivery after
/// the event yet (the gap is measured up to the time of the analysis).
/// </summary>
internal sealed record StreamGap(string Stream, TimeSpan Gap, bool Open);

/// <summary>
/// Records, per stream (by default the channel of a command), the sequence number and arrival time of every
/// command a <see cref="CentrifugoStandIn"/> accepted, plus the time every command was produced, and computes what a
/// chaos test asserts: lost commands, duplicates, first-delivery reorderings, whether the last application of
/// every command is in order, and per-stream delivery gaps around an event. Plug <see cref="OnAccepted"/> into
/// <see cref="StandInOptions.OnAccepted"/>; thread-safe. Times are <see cref="Stopwatch.GetTimestamp"/> ticks
/// (<see cref="Now"/>).
/// </summary>
internal sealed class DeliveryRecorder
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, List<Delivery>> _delivered = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<long>> _produced = new(StringComparer.Ordinal);
    private readonly Func<ReceivedCommand, (string Stream, long Seq)?> _identify;
    private long _unidentified;

    /// <param name="identify">Stream and sequence number of a command; null = not part of the test (counted). Default: first channel,
    /// data.seq.</param>
    public DeliveryRecorder(Func<ReceivedCommand, (string Stream, long Seq)?>? identify = null) =>
        _identify = identify ?? ChannelAndDataSeq;

    public static long Now => Stopwatch.GetTimestamp();

    /// <summary>Accepted commands that <c>identify</c> did not recognise.</summary>
    public long Unidentified => Interlocked.Read(ref _unidentified);

    /// <summary>Hook for <see cref="StandInOptions.OnAccepted"/>.</summary>
    public void OnAccepted(ReceivedCommand command)
    {
        var at = Now;
        if (_identify(command) is not { } id)
        {
            Interlocked.Increment(ref _unidentified);
            return;
        }

        Delivered(id.Stream, id.Seq, at);
    }

    /// <summary>Records a delivery of <paramref name="seq"/> on <paramref name="stream"/> at <paramref name="at"/> (what
    /// <see cref="OnAccepted"/> does).</summary>
    public void Delivered(string stream, long seq, long at)
    {
        lock (_gate)
        {
            if (!_delivered.TryGetValue(stream, out var list))
            {
                _delivered[stream] = list = [];
            }

            list.Add(new Delivery(seq, at));
        }
    }

    /// <summary>
    /// The producer calls this once the command with <paramref name="seq"/> became visible to consumers (commit /
    /// broker ack). Sequence numbers of a stream must be produced as 0, 1, 2, … in this order.
    /// </summary>
    public void Produced(string stream, long seq, long at)
    {
        lock (_gate)
        {
            if (!_produced.TryGetValue(stream, out var list))
            {
                _produced[stream] = list = [];
            }

            if (seq != list.Count)
            {
                throw new InvalidOperationException($"{stream}: produced seq {seq}, expected {list.Count}");
            }

            list.Add(at);
        }
    }

    public long ProducedCount(string stream)
    {
        lock (_gate)
        {
            return _produced.TryGetValue(stream, out var list) ? list.Count : 0;
        }
    }

    public IReadOnlyList<Delivery> DeliveriesOf(string stream)
    {
        lock (_gate)
        {
            return _delivered.TryGetValue(stream, out var list) ? [.. list] : [];
        }
    }

    /// <summary>Deliveries of every stream so far.</summary>
    public long DeliveryCount
    {
        get
        {
            lock (_gate)
            {
                return _delivered.Values.Sum(l => (long)l.Count);
            }
        }
    }

    /// <summary>True when every produced command of every one of <paramref name="streams"/> was delivered at least once.</summary>
    public bool AllDelivered(IEnumerable<string> streams) => streams.All(s => Report(s).Lost.Count == 0);

    /// <summary>True when each of <paramref name="streams"/> had a delivery after <paramref name="at"/>.</summary>
    public bool AllDeliveredAfter(IEnumerable<string> streams, long at)
    {
        lock (_gate)
        {
            return streams.All(s => _delivered.TryGetValue(s, out var list) && list.Count > 0 && list[^1].At > at);
        }
    }

    public StreamReport Report(string stream)
    {
        Delivery[] deliveries;
        long produced;
        lock (_gate)
        {
            deliveries = _delivered.TryGetValue(stream, out var list) ? [.. list] : [];
            produced = _produced.TryGetValue(stream, out var p) ? p.Count : 0;
        }

        var seen = new HashSet<long>();
        long firstReorderings = 0, maxFirst = -1, unexpected = 0;
        var last = new Dictionary<long, int>();
        for (var i = 0; i < deliveries.Length; i++)
        {
            var seq = deliveries[i].Seq;
            if (seq < 0 || seq >= produced)
            {
                unexpected++;
            }

            if (seen.Add(seq))
            {
                if (seq < maxFirst)
                {
                    firstReorderings++;
                }

                maxFirst = Math.Max(maxFirst, seq);
            }

            last[seq] = i;
        }

        // Commands ordered by their last application: each one applied last before a smaller one is a reordering.
        long lastReorderings = 0, previous = -1;
        var context = "";
        foreach (var seq in last.OrderBy(kv => kv.Value).Select(kv => kv.Key))
        {
            if (seq < previous)
            {
                lastReorderings++;
                if (context.Length == 0)
                {
                    var at = last[seq];
                    context = string.Join(" ", deliveries[Math.Max(0, at - 12)..Math.Min(deliveries.Length, at + 4)].Select(d =>
                        string.Create(CultureInfo.InvariantCulture,
                            $"{d.Seq}@{Stopwatch.GetElapsedTime(deliveries[0].At, d.At).TotalMilliseconds:0}")));
                }
            }

            previous = Math.Max(previous, seq);
        }

        var lost = new List<long>();
        for (long seq = 0; seq < produced; seq++)
        {
            if (!seen.Contains(seq))
            {
                lost.Add(seq);
            }
        }

        return new StreamReport(stream, produced, deliveries.Length, seen.Count, lost,
            deliveries.Length - seen.Count, firstReorderings, lastReorderings, unexpected) { ReorderingContext = context };
    }

    /// <summary>The delivery gap of each stream around the event at <paramref name="eventAt"/> (see <see cref="StreamGap"/>).</summary>
    public IReadOnlyList<StreamGap> GapsAround(long eventAt, IEnumerable<string> streams) => GapsAround(eventAt, eventAt, streams);

    /// <summary>
    /// For each stream, the longest silence with work waiting that overlaps [<paramref name="from"/>, its first
    /// delivery after <paramref name="until"/>]: between two consecutive deliveries a and b, the silence lasts from
    /// max(a, production of the command delivered at b) to b. <paramref name="until"/> is when the event's victim was
    /// gone: the event time for a kill or a freeze; the exit for a SIGTERM, whose node still delivers while it
    /// drains, so the hand-off silence after that is measured too. Open = no delivery after <paramref name="until"/>
    /// yet (measured up to now).
    /// </summary>
    public IReadOnlyList<StreamGap> GapsAround(long from, long until, IEnumerable<string> streams)
    {
        var now = Now;
        var gaps = new List<StreamGap>();
        lock (_gate)
        {
            foreach (var stream in streams)
            {
                var deliveries = (_delivered.TryGetValue(stream, out var list) ? list : []).OrderBy(d => d.At).ToArray();
                var produced = _produced.TryGetValue(stream, out var p) ? p : [];
                long ProducedAt(long seq) => seq >= 0 && seq < produced.Count ? produced[(int)seq] : long.MinValue;

                var first = Array.FindLastIndex(deliveries, d => d.At <= from); // -1: nothing before
                var end = Array.FindIndex(deliveries, d => d.At > until);      // -1: open
                var longest = 0L;
                var previous = first >= 0 ? deliveries[first].At : (long?)null;
                var stop = end >= 0 ? end : deliveries.Length - 1;
                for (var i = first + 1; i <= stop && i < deliveries.Length; i++)
                {
                    var start = Math.Max(previous ?? long.MinValue, ProducedAt(deliveries[i].Seq));
                    if (start != long.MinValue)
                    {
                        longest = Math.Max(longest, deliveries[i].At - start);
                    }

                    previous = deliveries[i].At;
                }

                if (end < 0)
                {
                    // Still silent: since the last delivery, or since the oldest command not yet delivered was produced.
                    var delivered = deliveries.Select(d => d.Seq).ToHashSet();
                    var waiting = Enumerable.Range(0, produced.Count).Where(seq => !delivered.Contains(seq)).Select(seq => produced[seq])
                        .DefaultIfEmpty(long.MaxValue).First();
                    var start = Math.Max(previous ?? long.MinValue, waiting == long.MaxValue ? now : waiting);
                    longest = Math.Max(longest, now - Math.Min(start, now));
                }

                gaps.Add(new StreamGap(stream, Stopwatch.GetElapsedTime(0, Math.Max(0, longest)), end < 0));
            }
        }

        return gaps;
    }

    /// <summary>One line per figure: totals over <paramref name="reports"/>.</summary>
    public static string Summarise(IReadOnlyList<StreamReport> reports) => string.Create(CultureInfo.InvariantCulture,
        $"produced {reports.Sum(r => r.Produced)}, deliveries {reports.Sum(r => r.Deliveries)}, lost {reports.Sum(r => r.Lost.Count)}, " +
        $"duplicates {reports.Sum(r => r.Duplicates)}, first-delivery reorderings {reports.Sum(r => r.FirstDeliveryReorderings)}, " +
        $"last-application reorderings {reports.Sum(r => r.LastApplicationReorderings)}, unexpected {reports.Sum(r => r.Unexpected)}");

    /// <summary>"max 1234 ms (stream), median 40 ms, open: …" for a set of gaps.</summary>
    public static string Describe(IReadOnlyList<StreamGap> gaps)
    {
        if (gaps.Count == 0)
        {
            return "no streams";
        }

        var sorted = gaps.OrderBy(g => g.Gap).ToArray();
        var max = sorted[^1];
        var text = new StringBuilder(string.Create(CultureInfo.InvariantCulture,
            $"max {max.Gap.TotalMilliseconds:0} ms ({max.Stream}), " +
            $"median {sorted[sorted.Length / 2].Gap.TotalMilliseconds:0} ms over {gaps.Count} streams"));
        var open = gaps.Where(g => g.Open).Select(g => g.Stream).ToArray();
        if (open.Length > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"; NOT delivering again: {string.Join(",", open)}");
        }

        return text.ToString();
    }

    /// <summary>Default identity: the first channel, and data.seq of the command's JSON.</summary>
    public static (string Stream, long Seq)? ChannelAndDataSeq(ReceivedCommand command)
    {
        if (command.Channels.Count == 0)
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(command.RequestJson);
            return doc.RootElement.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.Object
                && data.TryGetProperty("seq", out var seq) && seq.TryGetInt64(out var value)
                ? (command.Channels[0], value)
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
