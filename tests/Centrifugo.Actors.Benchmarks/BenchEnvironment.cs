using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Host;
using Centrifugo.Actors.Hosting;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Testing.Postgres;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Centrifugo.Actors.Benchmarks;

/// <summary>The private PostgreSQL server (stock settings) every mode uses, and helpers to start whole nodes.</summary>
internal sealed class BenchEnvironment : IAsyncDisposable
{
    private int _tables;

    private BenchEnvironment(PostgresInstance postgres, string connectionString, NpgsqlDataSource dataSource)
    {
        Postgres = postgres;
        ConnectionString = connectionString;
        DataSource = dataSource;
    }

    public PostgresInstance Postgres { get; }
    public string ConnectionString { get; }
    /// <summary>For the benchmark's own statements (fill, count, raw drain); the node has its own pool.</summary>
    public NpgsqlDataSource DataSource { get; }
    public string Database => "bench";

    /// <param name="extraSettings">postgresql.conf lines for diagnostics (e.g. loading pg_stat_statements); stock when null.</param>
    public static async Task<BenchEnvironment> StartAsync(CancellationToken cancellationToken, IReadOnlyList<string>? extraSettings = null)
    {
        var postgres = await PostgresInstance.StartAsync(
            PostgresInstanceOptions.ForBenchmarks with { ExtraSettings = extraSettings }, cancellationToken);
        var connectionString = await postgres.CreateDatabaseAsync("bench", cancellationToken);
        var dataSource = NpgsqlDataSource.Create(
            new NpgsqlConnectionStringBuilder(connectionString) { MaxPoolSize = 150 }.ConnectionString);
        return new BenchEnvironment(postgres, connectionString, dataSource);
    }

    /// <summary>A fresh outbox table name per run: runs never inherit another run's dead tuples or statistics.</summary>
    public string NextTableName(string prefix) => $"{prefix}_{Interlocked.Increment(ref _tables).ToString(CultureInfo.InvariantCulture)}";

    public async Task DropTableAsync(OutboxTestTable table, CancellationToken cancellationToken)
    {
        await using var command = DataSource.CreateCommand(
            $"DROP TABLE IF EXISTS {table.QuotedName}; DROP TABLE IF EXISTS {OutboxSqlName(table.Name + "_dead_letter")}");
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static string OutboxSqlName(string name) => Centrifugo.Actors.Outbox.OutboxSql.QuoteTableName(name);

    /// <summary>Rows of the benchmark: publish commands spread round-robin over the partitions.</summary>
    public static IEnumerable<OutboxInsert> PublishRows(int count, int partitions)
    {
        for (var i = 0; i < count; i++)
        {
            yield return new OutboxInsert("publish",
                "{\"channel\":\"bench\",\"data\":{\"i\":" + i.ToString(CultureInfo.InvariantCulture) + "}}", i % partitions);
        }
    }

    public PostgresConsumer Consumer(string table, int partitions, int selectLimit, TimeSpan? poll = null, string channel = "") => new()
    {
        Name = "bench",
        Postgresql = new PostgresConsumerOptions
        {
            Dsn = Postgres.GetKeyValueDsn(Database),
            OutboxTableName = table,
            DeadLetterTableName = table + "_dead_letter",
            NumPartitions = partitions,
            PartitionSelectLimit = selectLimit,
            PartitionPollInterval = poll ?? TimeSpan.FromMilliseconds(300),
            PartitionNotificationChannel = channel,
        },
    };

    /// <summary>Starts a whole node in this process (runtime + actor system + admin endpoint) and waits for its partitions.</summary>
    public static async Task<BenchNode> StartNodeAsync(
        string apiUrl, string apiKey, PostgresConsumer consumer, CancellationToken cancellationToken, int maxBatchSize = 100)
    {
        var options = new NodeOptions
        {
            Api = new ApiOptions { Url = apiUrl, Key = apiKey, MaxBatchSize = maxBatchSize },
            Consumers = [consumer],
            Cluster = new ClusterOptions { Hostname = "127.0.0.1", Port = 0 },
            Admin = new AdminOptions { Address = "127.0.0.1:0" },
        };
        var loggerFactory = LoggerFactory.Create(b => b
            .SetMinimumLevel(LogLevel.Warning)
            .AddFilter("Centrifugo.Actors.Outbox", LogLevel.Error)
            .AddFilter("Centrifugo.Actors.Delivery", LogLevel.Error)
            .AddSimpleConsole(o => o.SingleLine = true));
        var runtime = await NodeRuntime.StartAsync(options, loggerFactory, cancellationToken);
        var app = NodeHost.Build(runtime, loggerFactory);
        await app.StartAsync(cancellationToken);
        var node = new BenchNode(runtime, app, loggerFactory);
        try
        {
            await node.WaitForPartitionsAsync(consumer.Postgresql.NumPartitions, TimeSpan.FromSeconds(120), cancellationToken);
            return node;
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
    }

    public async Task<string> DescribeMachineAsync(CancellationToken cancellationToken)
    {
        await using var command = DataSource.CreateCommand("SELECT version()");
        var pgVersion = (string)(await command.ExecuteScalarAsync(cancellationToken))!;
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"machine: {ReadOs()}, {Environment.ProcessorCount} cores ({ReadCpuModel()}), {ReadMemTotalMb()} MB RAM");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"runtime: {RuntimeInformation.FrameworkDescription}, server GC {System.Runtime.GCSettings.IsServerGC}");
        text.Append(CultureInfo.InvariantCulture, $"postgres: {pgVersion} (stock settings: fsync, synchronous_commit on)");
        return text.ToString();
    }

    private static string ReadOs() =>
        File.Exists("/etc/os-release")
            ? File.ReadLines("/etc/os-release")
                .FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal))?[12..].Trim('"') ?? "linux"
            : RuntimeInformation.OSDescription;

    private static string ReadCpuModel() =>
        File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo")
                .FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?"
            : "?";

    private static long ReadMemTotalMb() =>
        File.Exists("/proc/meminfo")
            ? long.Parse(File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal))
                .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024
            : 0;

    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync();
        await Postgres.DisposeAsync();
    }
}

/// <summary>A node started by <see cref="BenchEnvironment.StartNodeAsync"/>.</summary>
internal sealed class BenchNode(NodeRuntime runtime, WebApplication app, ILoggerFactory loggerFactory) : IAsyncDisposable
{
    public PartitionStatusBoard Board => runtime.Board;

    public async Task WaitForPartitionsAsync(int count, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Board.Snapshot().Count(s => s.State is PartitionState.Idle or PartitionState.Delivering) < count)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{count} partitions did not start within {timeout}");
            }

            await Task.Delay(50, cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync(CancellationToken.None);
        await app.DisposeAsync();
        await runtime.DisposeAsync();
        loggerFactory.Dispose();
    }
}
