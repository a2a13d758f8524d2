using System.Collections.Concurrent;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Outbox;
using Centrifugo.Actors.Testing.Postgres;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Centrifugo.Actors.Tests.Outbox;

public sealed class OutboxNotificationListenerTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    private readonly ConcurrentQueue<int> _notified = new();

    private PostgresConsumerOptions Options(string channel, string? dsn = null, string notificationDsn = "", int partitions = 4) => new()
    {
        Dsn = dsn ?? pg.Instance.UrlDsn,
        OutboxTableName = "unused",
        DeadLetterTableName = "unused_dead_letter",
        NumPartitions = partitions,
        PartitionNotificationChannel = channel,
        PartitionNotificationDsn = notificationDsn,
    };

    private OutboxNotificationListener Listener(PostgresConsumerOptions options) =>
        new("listener_test", options, _notified.Enqueue, NullLoggerFactory.Instance);

    private async Task NotifyAsync(string channel, string payload)
    {
        await using var command = pg.DataSource.CreateCommand("SELECT pg_notify($1, $2)");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = channel });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = payload });
        await command.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task Notify_from_the_outbox_trigger_wakes_the_named_partition()
    {
        var channel = PostgresFixture.UniqueName("Chan"); // mixed case: LISTEN quotes the channel
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, PostgresFixture.UniqueName("outbox"), notifyChannel: channel);
        await using var listener = Listener(Options(channel));
        await listener.StartAsync(CancellationToken.None);
        // A NOTIFY sent before the LISTEN was lost: once listening, every partition is woken once to look.
        Assert.Equal([0, 1, 2, 3], _notified.Order());
        _notified.Clear();

        await table.InsertOneAsync(new OutboxInsert("publish", "{}", 2));

        await Poll.UntilAsync(() => !_notified.IsEmpty, "notification");
        Assert.Equal([2], _notified);
    }

    [Fact]
    public async Task Invalid_and_out_of_range_payloads_are_ignored()
    {
        var channel = PostgresFixture.UniqueName("chan");
        await using var listener = Listener(Options(channel, partitions: 4));
        await listener.StartAsync(CancellationToken.None);
        _notified.Clear(); // the wake of every partition that follows a LISTEN

        foreach (var bad in new[] { "x", "-1", "4", "1.5", " 1", "99999999999999", "" })
        {
            await NotifyAsync(channel, bad);
        }

        await NotifyAsync(channel, "3");

        // notifications of one session arrive in order, so once "3" is seen every bad one was handled
        await Poll.UntilAsync(() => _notified.Contains(3), "valid notification");
        Assert.Equal([3], _notified);
    }

    [Fact]
    public async Task The_notification_dsn_is_used_instead_of_the_main_dsn()
    {
        var channel = PostgresFixture.UniqueName("chan");
        var unreachable = $"postgres://postgres:{pg.Instance.Password}@127.0.0.1:1/postgres?sslmode=disable";
        await using var listener = Listener(Options(channel, dsn: unreachable, notificationDsn: pg.Instance.KeyValueDsn));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await listener.StartAsync(cts.Token);
        Assert.Equal(1, listener.ListenCount);

        await NotifyAsync(channel, "1");
        await Poll.UntilAsync(() => _notified.Contains(1), "notification over the notification DSN");
    }

    [Fact]
    public async Task After_its_backend_is_terminated_the_listener_reconnects_and_wakes_every_partition()
    {
        var channel = PostgresFixture.UniqueName("chan");
        var app = PostgresFixture.UniqueName("listener");
        await using var listener = Listener(Options(channel, dsn: pg.Instance.UrlDsn + "&application_name=" + app, partitions: 3));
        await listener.StartAsync(CancellationToken.None);
        _notified.Clear(); // the wake of every partition that follows the first LISTEN

        await using (var kill = pg.DataSource.CreateCommand(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1"))
        {
            kill.Parameters.Add(new NpgsqlParameter<string> { TypedValue = app });
            Assert.Equal(1L, await kill.ExecuteScalarAsync());
        }

        await Poll.UntilAsync(() => listener.ListenCount == 2 && _notified.Count >= 3, "reconnect", TimeSpan.FromSeconds(15));
        Assert.Equal([0, 1, 2], _notified.Order());

        _notified.Clear();
        await NotifyAsync(channel, "2");
        await Poll.UntilAsync(() => _notified.Contains(2), "notification after reconnect");
    }

    [Fact]
    public async Task Dispose_stops_the_loop_promptly_and_closes_the_connection()
    {
        var channel = PostgresFixture.UniqueName("chan");
        var app = PostgresFixture.UniqueName("listener");
        var listener = Listener(Options(channel, dsn: pg.Instance.UrlDsn + "&application_name=" + app));
        await listener.StartAsync(CancellationToken.None);

        await listener.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));

        await Poll.UntilAsync(async () =>
        {
            await using var count = pg.DataSource.CreateCommand("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1");
            count.Parameters.Add(new NpgsqlParameter<string> { TypedValue = app });
            return (long)(await count.ExecuteScalarAsync())! == 0;
        }, "listener session gone");
    }

    [Fact]
    public async Task Start_returns_when_the_token_fires_while_the_server_is_unreachable_and_dispose_still_stops()
    {
        var unreachable = $"postgres://postgres:x@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=1";
        var listener = Listener(Options(PostgresFixture.UniqueName("chan"), dsn: unreachable));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        await listener.StartAsync(cts.Token).WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(0, listener.ListenCount);
        await listener.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
    }
}
