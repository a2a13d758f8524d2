using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Outbox;
using Centrifugo.Actors.Testing.Postgres;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Centrifugo.Actors.Tests.Outbox;

/// <summary>TLS block end to end against a server started with ssl=on and a self-signed certificate (CN=localhost, IP 127.0.0.1).</summary>
public sealed class TlsTests(TlsTests.TlsServer fixture) : IClassFixture<TlsTests.TlsServer>
{
    private readonly PostgresInstance _server = fixture.Server;

    /// <summary>One TLS-enabled server for this class.</summary>
    public sealed class TlsServer : IAsyncLifetime
    {
        internal PostgresInstance Server { get; private set; } = null!;

        public async Task InitializeAsync() =>
            Server = await PostgresInstance.StartAsync(new PostgresInstanceOptions(Ssl: true, MaxConnections: 30));

        public async Task DisposeAsync() => await Server.DisposeAsync();
    }

    private async Task<string> CreateTableAsync()
    {
        await using var dataSource = NpgsqlDataSource.Create(_server.ConnectionString);
        var table = await OutboxTestTable.CreateAsync(dataSource, PostgresFixture.UniqueName("outbox"));
        await table.InsertAsync([new OutboxInsert("publish", "{}", 0)]);
        return table.Name;
    }

    private async Task<int> ReadOneBatchAsync(string table, TlsOptions tls, string host = "127.0.0.1")
    {
        var options = new PostgresConsumerOptions
        {
            Dsn = $"postgres://postgres:{_server.Password}@{host}:{_server.Port}/postgres?sslmode=disable",
            OutboxTableName = table,
            DeadLetterTableName = table + "_dead_letter",
            Tls = tls,
        };
        await using var store = new OutboxStore("tls", options, NullLoggerFactory.Instance);
        await store.InitializeAsync(CancellationToken.None);
        await using var batch = await store.BeginBatchAsync(0, CancellationToken.None);

        // the batch's session is open right now: it must be encrypted
        await using var dataSource = NpgsqlDataSource.Create(_server.ConnectionString);
        await using var command = dataSource.CreateCommand(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'centrifugo-actors'");
        Assert.True((bool)(await command.ExecuteScalarAsync())!);
        return batch!.Rows.Count;
    }

    [Fact]
    public async Task Enabled_tls_with_the_server_ca_verifies_and_encrypts()
    {
        var table = await CreateTableAsync();
        Assert.Equal(1, await ReadOneBatchAsync(table, new TlsOptions { Enabled = true, ServerCaPem = _server.ServerCertificatePem }));
    }

    [Fact]
    public async Task Base64_pem_and_localhost_host_name_are_accepted()
    {
        var table = await CreateTableAsync();
        var base64 = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(_server.ServerCertificatePem!));
        Assert.Equal(1, await ReadOneBatchAsync(table, new TlsOptions { Enabled = true, ServerCaPem = base64 }, host: "localhost"));
    }

    [Fact]
    public async Task Untrusted_server_certificate_is_refused_without_a_ca()
    {
        var table = await CreateTableAsync();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => ReadOneBatchAsync(table, new TlsOptions { Enabled = true }));
        Assert.DoesNotContain(_server.Password, e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wrong_server_name_is_refused_and_insecure_skip_verify_accepts_any_certificate()
    {
        var table = await CreateTableAsync();
        await Assert.ThrowsAsync<InvalidOperationException>(() => ReadOneBatchAsync(table,
            new TlsOptions { Enabled = true, ServerCaPem = _server.ServerCertificatePem, ServerName = "db.example.com" }));
        Assert.Equal(1, await ReadOneBatchAsync(table, new TlsOptions { Enabled = true, InsecureSkipVerify = true }));
    }
    [Fact]
    public async Task A_server_certificate_from_an_intermediate_ca_verifies_against_the_root_alone()
    {
        // As Go's crypto/tls does: the intermediate the server sends completes the chain to server_ca_pem's root.
        await using var server = await PostgresInstance.StartAsync(
            new PostgresInstanceOptions(Ssl: true, SslViaIntermediate: true, MaxConnections: 20));
        await using var dataSource = NpgsqlDataSource.Create(server.ConnectionString);
        var table = await OutboxTestTable.CreateAsync(dataSource, PostgresFixture.UniqueName("outbox"));
        await table.InsertAsync([new OutboxInsert("publish", "{}", 0)]);
        var options = new PostgresConsumerOptions
        {
            Dsn = $"postgres://postgres:{server.Password}@127.0.0.1:{server.Port}/postgres?sslmode=disable",
            OutboxTableName = table.Name,
            DeadLetterTableName = table.Name + "_dead_letter",
            Tls = new TlsOptions { Enabled = true, ServerCaPem = server.RootCertificatePem! },
        };
        await using var store = new OutboxStore("tls", options, NullLoggerFactory.Instance);
        await store.InitializeAsync(CancellationToken.None);
        await using var batch = await store.BeginBatchAsync(0, CancellationToken.None);
        Assert.Single(batch!.Rows);
    }
}
