using System.Globalization;
using System.Text;

namespace Centrifugo.Actors.Benchmarks;

/// <summary>
/// `latency-deployed --deployed-statements on`: where PostgreSQL's CPU goes during the measured window. Statements per
/// second from pg_stat_statements (loaded for this option only; track = all, utility statements such as BEGIN/COMMIT
/// included), and the server's CPU split by session kind: every postmaster child's /proc CPU, grouped by what
/// pg_stat_activity says it is (application_name of client sessions; a LISTEN session apart; background processes by
/// backend_type).
/// </summary>
internal sealed class StatementStats
{
    private readonly BenchEnvironment _env;
    private readonly Dictionary<int, (long Ticks, long Wakes)> _atStart;

    private StatementStats(BenchEnvironment env, Dictionary<int, (long Ticks, long Wakes)> atStart)
    {
        _env = env;
        _atStart = atStart;
    }

    public static async Task<StatementStats> StartAsync(BenchEnvironment env, CancellationToken cancellationToken)
    {
        await using (var command = env.DataSource.CreateCommand(
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()"))
        {
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        return new StatementStats(env, PostgresChildTicks(env.Postgres.DataDirectory));
    }

    /// <returns>Lines for stderr: top statements by calls, then CPU per session kind (% of one core).</returns>
    public async Task<string> StopAsync(double seconds, CancellationToken cancellationToken)
    {
        var ticks = PostgresChildTicks(_env.Postgres.DataDirectory);
        var kinds = new Dictionary<int, string>();
        await using (var command = _env.DataSource.CreateCommand(
            "SELECT pid, backend_type, coalesce(application_name, ''), coalesce(query, '') FROM pg_stat_activity"))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var backendType = reader.GetString(1);
                var application = reader.GetString(2);
                var query = reader.GetString(3);
                kinds[reader.GetInt32(0)] = backendType != "client backend" ? backendType
                    : query.StartsWith("LISTEN", StringComparison.OrdinalIgnoreCase) ? $"{application} (LISTEN)"
                    : application.Length == 0 ? "client (no application_name)" : application;
            }
        }

        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"  PostgreSQL by session kind over {seconds:0.0} s: CPU % of one core " +
            $"| wake-ups/s (voluntary context switches: ~ round trips) | kind (sessions):");
        var cpuByKind = ticks
            .Select(t => (kind: kinds.GetValueOrDefault(t.Key, "postmaster/other"),
                ticks: t.Value.Ticks - _atStart.GetValueOrDefault(t.Key).Ticks,
                wakes: t.Value.Wakes - _atStart.GetValueOrDefault(t.Key).Wakes))
            .GroupBy(t => t.kind)
            .Select(g => (kind: g.Key, percent: g.Sum(t => t.ticks) / 100.0 / seconds * 100, wakes: g.Sum(t => t.wakes) / seconds,
                sessions: g.Count()))
            .Where(g => g.percent > 0.05 || g.wakes > 1)
            .OrderByDescending(g => g.percent);
        foreach (var (kind, percent, wakes, sessions) in cpuByKind)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"    {percent,6:0.0} % | {wakes,6:0} | {kind} ({sessions})");
        }

        text.AppendLine("  statements/s (pg_stat_statements, all databases) | mean exec ms | rows/call | statement:");
        await using (var command = _env.DataSource.CreateCommand(
            "SELECT calls, mean_exec_time, rows, query FROM pg_stat_statements WHERE calls > 10 ORDER BY calls DESC LIMIT 14"))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            long total = 0;
            while (await reader.ReadAsync(cancellationToken))
            {
                var calls = reader.GetInt64(0);
                total += calls;
                var query = reader.GetString(3).ReplaceLineEndings(" ");
                text.AppendLine(CultureInfo.InvariantCulture,
                    $"    {calls / seconds,8:0} " +
                    $"| {reader.GetDouble(1),7:0.000} | {(calls == 0 ? 0 : reader.GetInt64(2) / (double)calls),6:0.00} " +
                    $"| {(query.Length > 110 ? query[..110] + "…" : query)}");
            }
            text.Append(CultureInfo.InvariantCulture, $"    {total / seconds,8:0}   (the statements above, per second)");
        }
        return text.ToString();
    }

    private static Dictionary<int, (long Ticks, long Wakes)> PostgresChildTicks(string dataDirectory)
    {
        var result = new Dictionary<int, (long Ticks, long Wakes)>();
        foreach (var (pid, _, fields) in Measure.PostgresProcesses(dataDirectory))
        {
            try
            {
                var wakes = File.ReadLines($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/status")
                    .FirstOrDefault(l => l.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal))?.Split(':')[1].Trim();
                result[pid] = (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture),
                    wakes is null ? 0 : long.Parse(wakes, CultureInfo.InvariantCulture));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // the process ended meanwhile
            }
        }
        return result;
    }
}
