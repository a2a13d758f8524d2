using System.Diagnostics;
using System.Globalization;

namespace Centrifugo.Actors.Benchmarks;

/// <summary>Process and server measurements read from /proc, and the statistics the reports use.</summary>
internal static class Measure
{
    private const double ClockTicksPerSecond = 100; // USER_HZ on Linux

    public static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>Nearest-rank percentile of an ascending array.</summary>
    public static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Length) - 1, 0, sorted.Length - 1)];

    public static double Milliseconds(long stopwatchTicks) => stopwatchTicks * 1000.0 / Stopwatch.Frequency;

    /// <summary>Resident set size of this process in MB (VmRSS).</summary>
    public static double RssMb()
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    }

    public static TimeSpan ProcessCpu()
    {
        using var self = Process.GetCurrentProcess();
        return self.TotalProcessorTime;
    }

    /// <summary>CPU time (user + system) of another process, from /proc/PID/stat.</summary>
    public static TimeSpan ProcessCpu(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return TimeSpan.FromSeconds(
            (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture))
            / ClockTicksPerSecond);
    }

    /// <summary>CPU time of the PostgreSQL postmaster and all its children (backends, autovacuum, WAL writer…).</summary>
    public static TimeSpan PostgresCpu(string dataDirectory)
    {
        var pidFile = Path.Combine(dataDirectory, "postmaster.pid");
        if (!File.Exists(pidFile))
        {
            return TimeSpan.Zero;
        }

        long ticks = 0;
        foreach (var (pid, postmaster, fields) in PostgresProcesses(dataDirectory))
        {
            ticks += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            if (pid == postmaster)
            {
                // cutime + cstime: backends that already exited (reaped by the postmaster) keep counting.
                ticks += long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture);
            }
        }

        return TimeSpan.FromSeconds(ticks / ClockTicksPerSecond);
    }

    /// <summary>
    /// The PostgreSQL postmaster of <paramref name="dataDirectory"/> and its children (backends, autovacuum, WAL
    /// writer…), each with its /proc/PID/stat fields after the command name (state ppid … utime(11) stime(12) cutime(13)
    /// cstime(14), 0-based); processes that end while they are read are left out.
    /// </summary>
    public static IEnumerable<(int Pid, int Postmaster, string[] Fields)> PostgresProcesses(string dataDirectory)
    {
        var postmaster = int.Parse(File.ReadLines(Path.Combine(dataDirectory, "postmaster.pid")).First(), CultureInfo.InvariantCulture);
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            string[] fields;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (pid != postmaster && int.Parse(fields[1], CultureInfo.InvariantCulture) != postmaster)
                {
                    continue;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                continue; // the process ended while we read it
            }

            yield return (pid, postmaster, fields);
        }
    }

    /// <summary>Time this process spent compiling methods (all threads, tiered re-compilation included).</summary>
    public static TimeSpan JitTime() => System.Runtime.JitInfo.GetCompilationTime(currentThread: false);

    /// <summary>
    /// Waits until tiered compilation has settled: less than 10 ms of JIT time over <paramref name="quietFor"/>, or
    /// <paramref name="max"/> passed. A fresh node keeps re-compiling its periodic paths (tier-0 → instrumented →
    /// tier-1) for a while; a long-running node has paid that once. Returns how long it waited.
    /// </summary>
    public static async Task<TimeSpan> WaitForJitQuietAsync(TimeSpan quietFor, TimeSpan max, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var samples = new Queue<(TimeSpan At, TimeSpan Jit)>();
        while (clock.Elapsed < max)
        {
            var now = (clock.Elapsed, JitTime());
            samples.Enqueue(now);
            while (samples.Count > 1 && now.Elapsed - samples.Peek().At > quietFor)
            {
                samples.Dequeue();
            }

            var oldest = samples.Peek();
            if (now.Elapsed - oldest.At >= quietFor - TimeSpan.FromMilliseconds(600)
                && now.Item2 - oldest.Jit < TimeSpan.FromMilliseconds(10))
            {
                break;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken);
        }

        return clock.Elapsed;
    }

    public static string F(double value, string format = "0") => value.ToString(format, CultureInfo.InvariantCulture);
}
