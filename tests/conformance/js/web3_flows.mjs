// @solana/web3.js 1.x with @solana/spl-token 0.4: the flows a wallet or an Anchor client runs,
// unmodified, against the node named on the command line. Prints one JSON line of findings.
import {
  Connection,
  Keypair,
  LAMPORTS_PER_SOL,
  SystemProgram,
  Transaction,
  sendAndConfirmTransaction,
} from '@solana/web3.js';
import {
  AccountLayout,
  createMint,
  getOrCreateAssociatedTokenAccount,
  mintTo,
  transfer,
} from '@solana/spl-token';

const url = process.argv[2];
const deadline = setTimeout(() => {
  console.error('web3_flows: timed out');
  process.exit(2);
}, 60_000);

function waitFor(register, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} notification`)), 20_000);
    register((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

const connection = new Connection(url, 'confirmed'); // pubsub: the RPC port + 1, as always
const payer = Keypair.generate();
const started = Date.now();
const airdrop = await connection.requestAirdrop(payer.publicKey, 5 * LAMPORTS_PER_SOL);
const latest = await connection.getLatestBlockhash();
const airdropped = await connection.confirmTransaction({ signature: airdrop, ...latest }, 'confirmed');
const confirmMs = Date.now() - started;

const friend = Keypair.generate();
const transferSig = await sendAndConfirmTransaction(
  connection,
  new Transaction().add(
    SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: friend.publicKey, lamports: LAMPORTS_PER_SOL }),
  ),
  [payer],
);

const mint = await createMint(connection, payer, payer.publicKey, null, 6);
const mine = await getOrCreateAssociatedTokenAccount(connection, payer, mint, payer.publicKey);
const theirs = await getOrCreateAssociatedTokenAccount(connection, payer, mint, friend.publicKey);

let accountListener;
const changed = waitFor((done) => {
  accountListener = connection.onAccountChange(
    mine.address,
    (info) => done(AccountLayout.decode(info.data).amount.toString()),
    { commitment: 'confirmed' },
  );
}, 'account');
let logsListener;
const logged = waitFor((done) => {
  logsListener = connection.onLogs(mint, (logs) => done(logs), 'confirmed');
}, 'logs');
// Subscriptions are made asynchronously; let the node acknowledge them first.
await new Promise((resolve) => setTimeout(resolve, 500));

const mintSig = await mintTo(connection, payer, mint, mine.address, payer, 1_000_000n);
const seenAmount = await changed;
const seenLogs = await logged;
const transferTokens = await transfer(connection, payer, mine.address, theirs.address, payer, 250_000n);
await connection.removeAccountChangeListener(accountListener);
await connection.removeOnLogsListener(logsListener);

const history = await connection.getSignaturesForAddress(mine.address, { limit: 10 });
const parsed = await connection.getParsedTransaction(mintSig, {
  commitment: 'confirmed',
  maxSupportedTransactionVersion: 0,
});
const instruction = parsed.transaction.message.instructions.find((ix) => ix.program === 'spl-token');
const balance = await connection.getTokenAccountBalance(theirs.address);

console.log(
  JSON.stringify({
    airdropErr: airdropped.value.err,
    confirmMs,
    transferSig,
    mint: mint.toBase58(),
    seenAmount,
    logsSignature: seenLogs.signature,
    logsErr: seenLogs.err,
    mintSig,
    transferTokens,
    history: history.map((item) => item.signature),
    parsedType: instruction?.parsed?.type,
    parsedAmount: instruction?.parsed?.info?.amount,
    friendTokens: balance.value.amount,
  }),
);
clearTimeout(deadline);
process.exit(0);
