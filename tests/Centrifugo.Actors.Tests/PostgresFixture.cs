using Centrifugo.Actors.Testing.Postgres;
using Npgsql;

namespace Centrifugo.Actors.Tests;

/// <summary>
/// Access to the one PostgreSQL server of a test run (started on first use, stopped at process exit).
/// Use it as a class fixture — <c>IClassFixture&lt;PostgresFixture&gt;</c> — so that classes keep running in
/// parallel while sharing the server; <c>[Collection("postgres")]</c> also works but serialises its classes.
/// Isolation comes from unique table/channel names (<see cref="UniqueName"/>), not from separate servers.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    private static readonly Lazy<Task<PostgresInstance>> Shared =
        new(() => PostgresInstance.StartAsync(PostgresInstanceOptions.ForTests), LazyThreadSafetyMode.ExecutionAndPublication);

    private PostgresInstance? _instance;
    private NpgsqlDataSource? _dataSource;

    internal PostgresInstance Instance => _instance ?? throw new InvalidOperationException("fixture not initialised");

    /// <summary>Pooled data source on database postgres, for test setup and assertions.</summary>
    internal NpgsqlDataSource DataSource => _dataSource ?? throw new InvalidOperationException("fixture not initialised");

    /// <summary>The shared server, for code that is not an xUnit class (e.g. static helpers).</summary>
    internal static Task<PostgresInstance> GetSharedAsync() => Shared.Value;

    /// <summary>A fresh lower-case identifier, e.g. outbox_3f2a9c… (unique per call).</summary>
    internal static string UniqueName(string prefix) => $"{prefix}_{Guid.NewGuid().ToString("N")[..12]}";

    public async Task InitializeAsync()
    {
        _instance = await Shared.Value;
        _dataSource = NpgsqlDataSource.Create(_instance.ConnectionString);
    }

    public async Task DisposeAsync()
    {
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync();
        }
    }
}

/// <summary>Classes marked <c>[Collection("postgres")]</c> get the shared <see cref="PostgresFixture"/> injected.</summary>
[CollectionDefinition("postgres")]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>;
