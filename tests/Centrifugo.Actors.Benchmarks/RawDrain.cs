using System.Net.Http.Headers;
using Npgsql;
using NpgsqlTypes;

namespace Centrifugo.Actors.Benchmarks;

/// <summary>Sends one row as one HTTP request (the naive worker); returns false when it was not accepted.</summary>
internal delegate Task<bool> RowDispatch(string method, byte[] payload, CancellationToken cancellationToken);

/// <summary>
/// Centrifugo's per-partition loop written directly against Npgsql, one connection per partition (spec §2.3):
/// BEGIN; SELECT pg_advisory_xact_lock(hashtext(…)); SELECT id, method, payload, partition … ORDER BY id LIMIT n;
/// [dispatch each row]; DELETE … WHERE id = ANY($1); COMMIT — until a SELECT returns nothing. Without a dispatch
/// it is the database ceiling ("raw drain"); with one HTTP POST per row it is the naive worker.
/// </summary>
internal sealed class RawDrain(NpgsqlDataSource dataSource, string quotedTable, int partitions, int limit, RowDispatch? dispatch)
{
    /// <summary>Opens and prepares every partition's connection; <see cref="RunAsync"/> then only drains.</summary>
    public async Task<IAsyncDisposable> PrepareAsync(CancellationToken cancellationToken)
    {
        var workers = new Worker[partitions];
        for (var p = 0; p < partitions; p++)
        {
            workers[p] = await Worker.OpenAsync(dataSource, quotedTable, p, limit, cancellationToken);
        }

        _workers = workers;
        return new Closer(workers);
    }

    private Worker[] _workers = [];

    /// <summary>Drains every partition concurrently; returns the number of rows deleted.</summary>
    public async Task<long> RunAsync(CancellationToken cancellationToken)
    {
        var counts = await Task.WhenAll(_workers.Select(w => w.DrainAsync(dispatch, cancellationToken)));
        return counts.Sum();
    }

    /// <summary>The naive dispatch: POST {api}/{method} with the payload as body, one request per row.</summary>
    public static RowDispatch HttpPerRow(HttpClient http, string apiUrl) => async (method, payload, cancellationToken) =>
    {
        using var content = new ByteArrayContent(payload);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await http.PostAsync(apiUrl + "/" + method, content, cancellationToken);
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        return response.IsSuccessStatusCode && body.AsSpan().IndexOf("\"error\""u8) < 0;
    };

    private sealed class Closer(Worker[] workers) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            foreach (var w in workers)
            {
                await w.DisposeAsync();
            }
        }
    }

    private sealed class Worker : IAsyncDisposable
    {
        private readonly NpgsqlConnection _connection;
        private readonly NpgsqlCommand _lock;
        private readonly NpgsqlCommand _select;
        private readonly NpgsqlCommand _delete;
        private readonly NpgsqlParameter<long[]> _ids = new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint };

        private Worker(NpgsqlConnection connection, string quotedTable, int partition, int limit)
        {
            _connection = connection;
            _lock = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtext($1))", connection);
            _lock.Parameters.Add(new NpgsqlParameter<string> { TypedValue = "centrifugo_partition_lock_bench" + partition });
            _select = new NpgsqlCommand(
                $"SELECT id, method, payload, partition FROM {quotedTable} WHERE partition = $1 ORDER BY id ASC LIMIT $2", connection);
            _select.Parameters.Add(new NpgsqlParameter<int> { TypedValue = partition });
            _select.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
            _delete = new NpgsqlCommand($"DELETE FROM {quotedTable} WHERE id = ANY($1)", connection);
            _delete.Parameters.Add(_ids);
        }

        public static async Task<Worker> OpenAsync(
            NpgsqlDataSource dataSource, string quotedTable, int partition, int limit, CancellationToken cancellationToken)
        {
            var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            var worker = new Worker(connection, quotedTable, partition, limit);
            // pgx (Centrifugo's driver) caches prepared statements per connection; do the same.
            await worker._lock.PrepareAsync(cancellationToken);
            await worker._select.PrepareAsync(cancellationToken);
            worker._ids.TypedValue = [];
            await worker._delete.PrepareAsync(cancellationToken);
            return worker;
        }

        public async Task<long> DrainAsync(RowDispatch? dispatch, CancellationToken cancellationToken)
        {
            long total = 0;
            var ids = new List<long>();
            var rows = new List<(string Method, byte[] Payload)>();
            while (true)
            {
                ids.Clear();
                rows.Clear();
                await using var tx = await _connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, cancellationToken);
                await _lock.ExecuteNonQueryAsync(cancellationToken);
                await using (var reader = await _select.ExecuteReaderAsync(cancellationToken))
                {
                    while (await reader.ReadAsync(cancellationToken))
                    {
                        ids.Add(reader.GetInt64(0));
                        rows.Add((reader.GetString(1), reader.GetFieldValue<byte[]>(2)));
                        _ = reader.GetInt32(3);
                    }
                }

                if (ids.Count == 0)
                {
                    await tx.CommitAsync(cancellationToken);
                    return total;
                }

                var completed = ids.Count;
                if (dispatch is not null)
                {
                    for (var i = 0; i < rows.Count; i++)
                    {
                        if (!await dispatch(rows[i].Method, rows[i].Payload, cancellationToken))
                        {
                            completed = i;
                            break;
                        }
                    }
                }

                _ids.TypedValue = completed == ids.Count ? ids.ToArray() : ids.Take(completed).ToArray();
                await _delete.ExecuteNonQueryAsync(cancellationToken);
                await tx.CommitAsync(cancellationToken);
                total += completed;
                if (completed < ids.Count)
                {
                    throw new InvalidOperationException($"the stand-in rejected a row of partition {_select.Parameters[0].Value}");
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _lock.DisposeAsync();
            await _select.DisposeAsync();
            await _delete.DisposeAsync();
            await _connection.DisposeAsync();
        }
    }
}
