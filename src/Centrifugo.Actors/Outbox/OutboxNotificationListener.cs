using System.Globalization;
using Centrifugo.Actors.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Centrifugo.Actors.Outbox;

/// <summary>
/// LISTEN on partition_notification_channel (on partition_notification_dsn when set, else dsn) and
/// calls back with the partition index of each valid notification. Reconnects forever (1 s pause).
/// </summary>
/// <remarks>
/// Uses one dedicated, unpooled connection. The <c>tls</c> block applies only when listening on <c>dsn</c>, like
/// Centrifugo; <c>partition_notification_dsn</c> carries its own sslmode parameters. The channel is quoted, so its
/// case is preserved. A payload that is not a decimal partition index in [0, num_partitions) is logged and ignored.
/// After every reconnect the callback runs once for every partition, because notifications sent while the
/// connection was down are lost. The callback runs on Npgsql's reader task: it must be quick and must not block.
/// </remarks>
internal sealed class OutboxNotificationListener : IAsyncDisposable
{
    private static readonly TimeSpan ReconnectPause = TimeSpan.FromSeconds(1);
    private const int MaxLoggedPayload = 64;

    // A silently dead TCP connection would otherwise leave WaitAsync waiting forever.
    private const int KeepAliveSeconds = 15;

    private readonly string _consumerName;
    private readonly PostgresConsumerOptions _options;
    private readonly Action<int> _onPartitionNotified;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _firstListen = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _loop;

    public OutboxNotificationListener(
        string consumerName, PostgresConsumerOptions options, Action<int> onPartitionNotified, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(onPartitionNotified);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        if (string.IsNullOrEmpty(options.PartitionNotificationChannel))
        {
            throw new ArgumentException("partition_notification_channel is empty: nothing to listen to.", nameof(options));
        }

        _consumerName = consumerName;
        _options = options;
        _onPartitionNotified = onPartitionNotified;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<OutboxNotificationListener>();
    }

    /// <summary>Times the connection was (re)established and LISTEN succeeded; for tests and status.</summary>
    internal int ListenCount => Volatile.Read(ref _listenCount);
    private int _listenCount;

    /// <summary>Starts listening in the background; returns once the first LISTEN succeeded or the token fires.</summary>
    /// <remarks>When the token fires first the loop keeps trying in the background until disposed.</remarks>
    /// <exception cref="FormatException">The DSN cannot be parsed (never contains the password).</exception>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
        _loop ??= Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
        try
        {
            await _firstListen.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // documented: returns when the token fires; the loop keeps trying until disposed
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync();
        if (_loop is not null)
        {
            await _loop;
        }

        _stopping.Dispose();
    }

    private async Task RunAsync(CancellationToken stopping)
    {
        var useNotificationDsn = !string.IsNullOrEmpty(_options.PartitionNotificationDsn);
        NpgsqlDataSource dataSource;
        try
        {
            dataSource = useNotificationDsn
                ? PostgresDataSources.Create(_options.PartitionNotificationDsn, tls: null, pooling: false, _loggerFactory, KeepAliveSeconds)
                : PostgresDataSources.Create(_options.Dsn, _options.Tls, pooling: false, _loggerFactory, KeepAliveSeconds);
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            // Configuration validation should have caught this; without a source there is nothing to retry.
            OutboxLog.UnusableDsn(_logger, _consumerName, e.Message);
            _firstListen.TrySetException(e);
            return;
        }

        await using (dataSource)
        {
            while (!stopping.IsCancellationRequested)
            {
                try
                {
                    await ListenAsync(dataSource, stopping);
                }
                catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException
                    or System.Net.Sockets.SocketException)
                {
                    OutboxLog.ListenFailed(_logger, _consumerName, _options.PartitionNotificationChannel, e);
                }

                try
                {
                    await Task.Delay(ReconnectPause, stopping);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task ListenAsync(NpgsqlDataSource dataSource, CancellationToken stopping)
    {
        await using var connection = await dataSource.OpenConnectionAsync(stopping);
        connection.Notification += OnNotification;
        await OutboxStore.ExecuteAsync(connection, "LISTEN " + OutboxSql.QuoteIdentifier(_options.PartitionNotificationChannel), stopping);
        Interlocked.Increment(ref _listenCount);
        OutboxLog.Listening(_logger, _consumerName, _options.PartitionNotificationChannel);
        // A NOTIFY sent before this LISTEN (before the first one: after a partition's first read; before a reconnect:
        // while the connection was down) is lost: every partition gets one wake to look for such rows.
        for (var p = 0; p < _options.NumPartitions; p++)
        {
            Notify(p);
        }
        _firstListen.TrySetResult();

        while (true)
        {
            await connection.WaitAsync(stopping);
        }
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs e)
    {
        var payload = e.Payload;
        if (!int.TryParse(payload, NumberStyles.None, CultureInfo.InvariantCulture, out var partition))
        {
            OutboxLog.InvalidPayload(_logger, _consumerName, e.Channel, Truncate(payload));
            return;
        }

        if (partition >= _options.NumPartitions)
        {
            OutboxLog.PartitionOutOfRange(_logger, _consumerName, e.Channel, partition, _options.NumPartitions);
            return;
        }

        Notify(partition);
    }

    private void Notify(int partition)
    {
        try
        {
            _onPartitionNotified(partition);
        }
        catch (Exception e) // a faulty callback must not kill the listener connection
        {
            OutboxLog.CallbackFailed(_logger, _consumerName, partition, e);
        }
    }

    private static string Truncate(string payload) =>
        payload.Length <= MaxLoggedPayload ? payload : payload[..MaxLoggedPayload] + "…";
}
