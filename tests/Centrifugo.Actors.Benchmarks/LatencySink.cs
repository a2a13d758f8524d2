using System.Buffers.Text;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Centrifugo.Actors.Testing.StandIn;

namespace Centrifugo.Actors.Benchmarks;

/// <summary>
/// The Centrifugo side of <c>latency-deployed</c>, run as its own process (<c>Centrifugo.Actors.Benchmarks
/// __latency-sink ROWS</c>): the stand-in on an ephemeral loopback port, which timestamps each accepted command
/// (<see cref="Stopwatch.GetTimestamp"/>, CLOCK_MONOTONIC on Linux: the same clock in every process of the machine)
/// by the <c>seq</c> in its data, first delivery only. Talks to the harness over stdin/stdout, one line each:
/// it prints <c>ready URL KEY</c>; then answers <c>clock</c> with <c>clock TIMESTAMP</c>, <c>count</c> with
/// <c>count N</c> (distinct sequences received), <c>dump PATH</c> with <c>dumped</c> after writing the receipt
/// timestamps (little-endian int64, one per sequence, 0 = not received), and exits on <c>exit</c> or end of input.
/// </summary>
internal static class LatencySink
{
    public const string Verb = "__latency-sink";

    public static async Task<int> RunAsync(string[] args)
    {
        var total = int.Parse(args[1], NumberStyles.None, CultureInfo.InvariantCulture);
        var received = new long[total];
        var count = 0;
        await using var standIn = await CentrifugoStandIn.StartNewAsync(new StandInOptions
        {
            RecordCommands = false,
            OnAccepted = command =>
            {
                var now = Stopwatch.GetTimestamp();
                var seq = SequenceOf(command.RequestJson);
                if (seq >= 0 && seq < total && Interlocked.CompareExchange(ref received[seq], now, 0) == 0)
                {
                    Interlocked.Increment(ref count);
                }
            },
        });
        Console.Out.WriteLine($"ready {standIn.Url} {standIn.ApiKey}");
        Console.Out.Flush();
        while (await Console.In.ReadLineAsync() is { } line)
        {
            var parts = line.Split(' ', 2);
            switch (parts[0])
            {
                case "clock":
                    Console.Out.WriteLine("clock " + Stopwatch.GetTimestamp().ToString(CultureInfo.InvariantCulture));
                    break;
                case "count":
                    Console.Out.WriteLine("count " + Volatile.Read(ref count).ToString(CultureInfo.InvariantCulture));
                    break;
                case "dump":
                    await using (var file = File.Create(parts[1]))
                    {
                        var bytes = new byte[total * sizeof(long)];
                        Buffer.BlockCopy(received, 0, bytes, 0, bytes.Length);
                        await file.WriteAsync(bytes);
                    }
                    Console.Out.WriteLine("dumped");
                    break;
                case "exit":
                    return 0;
                default:
                    Console.Out.WriteLine("unknown " + parts[0]);
                    break;
            }
            Console.Out.Flush();
        }
        return 0;
    }

    /// <summary>The <c>"seq":N</c> of a command's data; -1 when there is none.</summary>
    public static int SequenceOf(string requestJson)
    {
        var at = requestJson.IndexOf("\"seq\":", StringComparison.Ordinal);
        return at >= 0 && Utf8Parser.TryParse(Encoding.ASCII.GetBytes(requestJson[(at + 6)..].TrimStart()), out int seq, out _) ? seq : -1;
    }
}
